// Command jobs holds the long-running tools wasmhost's task tests rely on:
// one that succeeds slowly, one that fails as a tool, and one that fails at
// the protocol level.
package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

// SlowComputeIn is slow_compute's input.
type SlowComputeIn struct {
	// How long to compute, in seconds (0 answers at once).
	Seconds float64 `json:"seconds" jsonschema:"minimum=0"`
}

// slowCompute sleeps for the requested time, reporting progress once a
// second. The sleep goes through the host's clock, so a cancelled task ends
// at the next wake-up even if the guest never checks.
func slowCompute(c *guest.Call, in SlowComputeIn) (guest.Text, error) {
	if in.Seconds < 0 {
		return "", errors.New("seconds must not be negative")
	}
	total := time.Duration(in.Seconds * float64(time.Second))
	for done := time.Duration(0); done < total; {
		if c.Cancelled() {
			return "", guest.ErrCancelled
		}
		step := min(time.Second, total-done)
		time.Sleep(step)
		done += step
		c.Progress(done.Seconds(), total.Seconds(), fmt.Sprintf("%.0f of %gs", done.Seconds(), in.Seconds))
	}
	return guest.Text(fmt.Sprintf("Computed in %gs", in.Seconds)), nil
}

// failingJob works for a second, then fails as a tool: the task completes
// with isError set, because the tool ran and reported a failure.
func failingJob(c *guest.Call, _ struct{}) (guest.Text, error) {
	time.Sleep(time.Second)
	return "", errors.New("failing_job failed on purpose")
}

// protocolErrorJob panics: the guest traps and the task fails at the
// protocol level, as it would for a bug in the plugin.
func protocolErrorJob(c *guest.Call, _ struct{}) (guest.Text, error) {
	panic("protocol_error_job trapped on purpose")
}

func init() {
	guest.Register(guest.Tool{
		Name:        "slow_compute",
		Title:       "Slow compute",
		Description: "Pretend to compute for the given number of seconds, reporting progress.",
		// Running it twice does no harm: if its worker dies, another one
		// runs it again from the start instead of failing the task.
		Annotations: &guest.Annotations{IdempotentHint: true},
		TaskSupport: guest.TaskOptional,
	}, slowCompute)
	guest.Register(guest.Tool{
		Name:        "failing_job",
		Title:       "Failing job",
		Description: "Run for about a second, then fail with a tool error.",
		TaskSupport: guest.TaskOptional,
	}, failingJob)
	guest.Register(guest.Tool{
		Name:        "protocol_error_job",
		Title:       "Protocol error job",
		Description: "Crash the plugin, so the call fails at the protocol level.",
		TaskSupport: guest.TaskOptional,
	}, protocolErrorJob)
}

func main() {}
