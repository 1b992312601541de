// Command confirm holds the tools that ask the user for input: a
// confirmation before a (pretend) deletion, and two questions asked at once.
package main

import (
	"errors"
	"fmt"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

// ConfirmDeleteIn is confirm_delete's input.
type ConfirmDeleteIn struct {
	// The file to delete.
	Filename string `json:"filename"`
}

// Confirmation is the form shown to the user.
type Confirmation struct {
	// Tick to delete the file.
	Confirm bool `json:"confirm"`
}

// confirmDelete asks before "deleting". Nothing is deleted: the plugin has
// no file system access, and the point is the question.
func confirmDelete(c *guest.Call, in ConfirmDeleteIn) (guest.Text, error) {
	answer, err := guest.Elicit[Confirmation](c, fmt.Sprintf("Delete %s?", in.Filename))
	if errors.Is(err, guest.ErrUnsupported) {
		// The client cannot ask its user: no answer is not a yes.
		return guest.Text("Kept " + in.Filename), nil
	}
	if err != nil {
		return "", fmt.Errorf("asking for confirmation: %w", err)
	}
	if answer.Accepted() && answer.Content.Confirm {
		return guest.Text("Deleted " + in.Filename), nil
	}
	return guest.Text("Kept " + in.Filename), nil
}

// NameAnswer and ColourAnswer are the two forms multi_input shows at once.
type NameAnswer struct {
	// Your name.
	Name string `json:"name"`
}

type ColourAnswer struct {
	// Your favourite colour.
	Colour string `json:"colour" jsonschema:"enum=red|green|blue"`
}

// multiInput asks both questions in one batch: the client shows them
// together and the guest waits once, for both answers.
func multiInput(c *guest.Call, _ struct{}) (guest.Text, error) {
	name := guest.NewElicitation[NameAnswer]("What is your name?")
	colour := guest.NewElicitation[ColourAnswer]("What is your favourite colour?")
	if err := c.AskAll(name, colour); err != nil {
		return "", fmt.Errorf("asking two questions: %w", err)
	}
	who, err := name.Result()
	if err != nil {
		return "", fmt.Errorf("asking for a name: %w", err)
	}
	fav, err := colour.Result()
	if err != nil {
		return "", fmt.Errorf("asking for a colour: %w", err)
	}
	return guest.Text(fmt.Sprintf("name: %s (%s), colour: %s (%s)",
		who.Content.Name, who.Action, fav.Content.Colour, fav.Action)), nil
}

func init() {
	guest.Register(guest.Tool{
		Name:        "confirm_delete",
		Title:       "Confirm delete",
		Description: "Ask the user to confirm before deleting a file (nothing is really deleted).",
		TaskSupport: guest.TaskOptional,
	}, confirmDelete)
	guest.Register(guest.Tool{
		Name:        "multi_input",
		Title:       "Multiple inputs",
		Description: "Ask the user for a name and a favourite colour at the same time.",
		TaskSupport: guest.TaskOptional,
	}, multiInput)
}

func main() {}
