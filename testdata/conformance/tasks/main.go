// Command tasks holds the conformance suite's fixture tools for tasks
// (SEP-2663, docs/research/conformance.md §6.4): a synchronous greeting,
// jobs that succeed slowly, fail as a tool and fail at the protocol level,
// tools that need input while they run as tasks, and one that asks first
// and only then becomes a task.
package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

// GreetIn is greet's input.
type GreetIn struct {
	Name string `json:"name" description:"Who to greet."`
}

// SlowComputeIn is slow_compute's input. The suite always sends a label.
type SlowComputeIn struct {
	Seconds float64 `json:"seconds" description:"How long to compute, in seconds." jsonschema:"minimum=0"`
	Label   string  `json:"label,omitempty" description:"A label to tell runs apart."`
}

// ConfirmDeleteIn is confirm_delete's input.
type ConfirmDeleteIn struct {
	Filename string `json:"filename" description:"The file to delete."`
}

// The forms. multi_input's two are answered alike ({name, confirm}), so
// each asks for one of the two fields and ignores the other.
type (
	NameForm struct {
		Name string `json:"name"`
	}
	ConfirmForm struct {
		Confirm bool `json:"confirm" description:"Tick to go ahead."`
	}
)

type none struct{}

func greet(_ *guest.Call, in GreetIn) (guest.Text, error) {
	return guest.Text("Hello, " + in.Name + "!"), nil
}

// sleep waits d in steps of at most a second, so that a cancelled call
// ends promptly even between the host's own checks, reporting progress
// after each step.
func sleep(c *guest.Call, d time.Duration) error {
	for done := time.Duration(0); done < d; {
		if c.Cancelled() {
			return guest.ErrCancelled
		}
		step := min(time.Second, d-done)
		time.Sleep(step)
		done += step
		c.Progress(done.Seconds(), d.Seconds(), "")
	}
	return nil
}

func slowCompute(c *guest.Call, in SlowComputeIn) (guest.Text, error) {
	if in.Seconds < 0 {
		return "", errors.New("seconds must not be negative")
	}
	if err := sleep(c, time.Duration(in.Seconds*float64(time.Second))); err != nil {
		return "", err
	}
	if in.Label != "" {
		return guest.Text(fmt.Sprintf("Computed %s in %gs", in.Label, in.Seconds)), nil
	}
	return guest.Text(fmt.Sprintf("Computed in %gs", in.Seconds)), nil
}

// failingJob works for a second, then fails as a tool: the task ends
// completed, its result marked isError.
func failingJob(c *guest.Call, _ none) (guest.Text, error) {
	if err := sleep(c, time.Second); err != nil {
		return "", err
	}
	return "", errors.New("failing_job failed on purpose")
}

// protocolErrorJob traps: the task ends failed, with an error and no result.
func protocolErrorJob(*guest.Call, none) (guest.Text, error) {
	panic("protocol_error_job trapped on purpose")
}

func confirmDelete(c *guest.Call, in ConfirmDeleteIn) (guest.Text, error) {
	q := guest.NewElicitation[ConfirmForm](fmt.Sprintf("Delete %s?", in.Filename)).WithKey("confirm")
	if err := c.AskAll(q); err != nil {
		return "", err
	}
	a, err := q.Result()
	if errors.Is(err, guest.ErrUnsupported) {
		return guest.Text("Kept " + in.Filename + ": the client cannot ask for confirmation"), nil
	}
	if err != nil {
		return "", fmt.Errorf("asking for confirmation: %w", err)
	}
	if a.Accepted() && a.Content.Confirm {
		// A fixture for the conformance suite, which checks the flow, not
		// the file: it says what it did, which is nothing.
		return guest.Text("Not deleted " + in.Filename + ": this conformance fixture deletes nothing"), nil
	}
	return guest.Text("Kept " + in.Filename), nil
}

// multiInput has two questions pending at once, in one batch.
func multiInput(c *guest.Call, _ none) (guest.Text, error) {
	name := guest.NewElicitation[NameForm]("What is your name?").WithKey("name")
	ok := guest.NewElicitation[ConfirmForm]("Go ahead?").WithKey("confirm")
	if err := c.AskAll(name, ok); err != nil {
		return "", err
	}
	n, err := name.Result()
	if err != nil {
		return "", fmt.Errorf("asking for a name: %w", err)
	}
	o, err := ok.Result()
	if err != nil {
		return "", fmt.Errorf("asking to go ahead: %w", err)
	}
	return guest.Text(fmt.Sprintf("name: %s (%s), confirm: %v (%s)", n.Content.Name, n.Action, o.Content.Confirm, o.Action)), nil
}

// toolWithTask asks for a name while the client waits, then detaches: the
// client gets a task, whose result greets the name.
func toolWithTask(c *guest.Call, _ none) (guest.Text, error) {
	var who string
	for range 10 {
		q := guest.NewElicitation[NameForm]("What is your name?").WithKey("user_name")
		if err := c.AskAll(q); err != nil {
			return "", err
		}
		a, err := q.Result()
		if errors.Is(err, guest.ErrUnsupported) || errors.Is(err, guest.ErrCancelled) {
			return "", err
		}
		if err == nil && a.Accepted() && strings.TrimSpace(a.Content.Name) != "" {
			who = a.Content.Name
			break
		}
	}
	if who == "" {
		return "", errors.New("no usable name after 10 rounds")
	}
	detached := c.Detach()
	c.Logf(guest.LogInfo, "got the name; running as a task: %v", detached)
	if err := sleep(c, 200*time.Millisecond); err != nil {
		return "", err
	}
	return guest.Text("Hello, " + who + "! Your task is complete."), nil
}

func init() {
	guest.Register(guest.Tool{Name: "greet", Description: "Say hello to someone by name.", TaskSupport: guest.TaskForbidden}, greet)
	guest.Register(guest.Tool{Name: "slow_compute", Description: "Pretend to compute for the given number of seconds, reporting progress.",
		TaskSupport: guest.TaskOptional}, slowCompute)
	guest.Register(guest.Tool{Name: "failing_job", Description: "Run for about a second, then fail with a tool error.",
		TaskSupport: guest.TaskRequired}, failingJob)
	guest.Register(guest.Tool{Name: "protocol_error_job", Description: "Crash the plugin, so the task fails at the protocol level.",
		TaskSupport: guest.TaskRequired}, protocolErrorJob)
	guest.Register(guest.Tool{Name: "confirm_delete", Description: "Ask the user to confirm before deleting a file (this fixture deletes nothing, and says so).",
		TaskSupport: guest.TaskOptional}, confirmDelete)
	guest.Register(guest.Tool{Name: "multi_input", Description: "Ask the user for a name and a go-ahead at the same time.",
		TaskSupport: guest.TaskOptional}, multiInput)
	guest.Register(guest.Tool{Name: "test_tool_with_task", Description: "Ask the user's name, then finish the work as a task.",
		TaskSupport: guest.TaskRequired, DeferTask: true}, toolWithTask)
}

func main() {}
