// Command confirm holds the tools that ask the user for input: a deletion
// that happens only after the user confirms, and two questions asked at
// once.
//
// confirm_delete deletes for real, in the directory the operator grants at
// /files (docs/security.md):
//
//	{"plugins": {"confirm": {"dirs": [{"path": "/files", "hostPath": "/home/me/scratch", "write": true}]}}}
//
// Without that grant it still asks, and then answers "Not deleted NAME:"
// with how to grant the directory: it never claims a deletion it did not
// make.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

// dir is where confirm_delete deletes, as the plugin sees it.
const dir = "/files"

// ConfirmDeleteIn is confirm_delete's input.
type ConfirmDeleteIn struct {
	// The file to delete, by name, in the granted directory.
	Filename string `json:"filename"`
}

// Confirmation is the form shown to the user.
type Confirmation struct {
	// Tick to delete the file.
	Confirm bool `json:"confirm"`
}

// confirmDelete asks first, then deletes: a client that cannot ask its user
// gets no deletion (no answer is not a yes). A yes that cannot be carried
// out (the directory not granted, no such file) answers "Not deleted NAME:"
// and why, naming the grant to add: the answer always says what happened.
func confirmDelete(c *guest.Call, in ConfirmDeleteIn) (guest.Text, error) {
	if in.Filename == "" || len(in.Filename) > 255 || strings.ContainsAny(in.Filename, "/\\\x00") || in.Filename == "." || in.Filename == ".." {
		return "", fmt.Errorf("filename %q: give a file's name, without a directory", in.Filename)
	}
	answer, err := guest.Elicit[Confirmation](c, fmt.Sprintf("Delete %s?", in.Filename))
	if errors.Is(err, guest.ErrUnsupported) {
		return guest.Text("Kept " + in.Filename), nil
	}
	if err != nil {
		return "", fmt.Errorf("asking for confirmation: %w", err)
	}
	if !answer.Accepted() || !answer.Content.Confirm {
		return guest.Text("Kept " + in.Filename), nil
	}
	notDeleted := func(why string) (guest.Text, error) {
		return guest.Text(fmt.Sprintf("Not deleted %s: %s", in.Filename, why)), nil
	}
	if _, writable, err := c.Dir(dir); err != nil {
		return notDeleted(err.Error())
	} else if !writable {
		return notDeleted(dir + ` is granted read-only; grant it with "write": true`)
	}
	err = os.Remove(path.Join(dir, in.Filename))
	if errors.Is(err, fs.ErrNotExist) {
		return notDeleted("there is no such file in " + dir)
	}
	if err != nil {
		return notDeleted(err.Error())
	}
	return guest.Text("Deleted " + in.Filename), nil
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
	guest.NeedDir(dir, true, "to delete the files you confirm")
	destructive := true
	guest.Register(guest.Tool{
		Name:        "confirm_delete",
		Title:       "Confirm delete",
		Description: "Delete a file from the granted directory, after the user confirms.",
		Annotations: &guest.Annotations{DestructiveHint: &destructive},
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
