package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/abi"
)

// How a guest waits for answers without a connection each.
//
// A guest waiting for a person may wait for hours, and a worker holds
// thousands of them. A BLPOP per waiter would hold a Redis connection per
// waiter (go-redis pools 10 per CPU; past that, waits fail with pool
// timeouts) and could not be interrupted when the waiter's context ends.
// So each process blocks once, for all its waiters:
//
//   - AwaitAnswers runs awaitScript, which either returns every answer at
//     once or adds this process's inbox to the task's waiters set, in the
//     same atomic step.
//   - Every script that changes the task (answer, new request, the end)
//     pushes the task id onto the inbox of every waiting process.
//   - One goroutine per process (dispatch) BLPOPs its inbox, Block at a
//     time, and wakes the local AwaitAnswers calls for that task, which run
//     awaitScript again.
//
// A waiter also re-reads its task when it is due to expire and at least
// every awaitRecheck, and the reader wakes every waiter after it lost
// Redis for a while, so a lost wake-up costs latency, never a hang.
//
// Outages: AwaitAnswers fails at once with ErrUnavailable if Redis cannot
// be reached when it starts. A wait already in progress rides out an
// outage shorter than ClaimIdle (retrying with backoff) and then fails
// with ErrUnavailable.

// awaitRecheck is the longest a waiter goes without reading its task.
const awaitRecheck = 30 * time.Second

func (r *Redis) AwaitAnswers(ctx context.Context, id string, keys []string) (map[string]abi.InputResponse, error) {
	// Listen before looking, so that no wake-up falls in between.
	wake := r.listen(id)
	defer r.unlisten(id, wake)
	args := make([]any, 0, 1+len(keys))
	args = append(args, r.inbox)
	for _, k := range keys {
		args = append(args, k)
	}
	skeys := r.keys(id, "answers", "waiters")
	var (
		waiting bool      // registered: the task was seen, answers are missing
		away    time.Time // since when Redis has been unreachable
		pause   backoff
	)
	for {
		res, err := r.run(ctx, awaitScript, skeys, args...)
		if err != nil {
			// A wait in progress rides out a short outage: the task and
			// its answers are safe in Redis. It gives up after ClaimIdle,
			// when the queue may hand the task to another worker anyway.
			if !waiting || !errors.Is(err, ErrUnavailable) || !away.IsZero() && time.Since(away) >= r.opts.ClaimIdle {
				return nil, fmt.Errorf("task %s: wait for answers: %w", id, err)
			}
			if away.IsZero() {
				away = time.Now()
			}
			if err := r.sleep(ctx, wake, min(pause.next(), r.opts.ClaimIdle-time.Since(away))); err != nil {
				return nil, fmt.Errorf("task %s: wait for answers: %w", id, err)
			}
			continue
		}
		away, pause = time.Time{}, backoff{}
		if res[0] == "ok" {
			return decodeAnswers(id, keys, res[1:])
		}
		if res[0] != "missing" {
			return nil, refusal(id, Working, "", res)
		}
		waiting = true
		wait := awaitRecheck
		if pttl, ok := res[1].(int64); ok && pttl >= 0 {
			wait = min(wait, time.Duration(pttl+1)*time.Millisecond)
		}
		if err := r.sleep(ctx, wake, wait); err != nil {
			return nil, fmt.Errorf("task %s: wait for answers: %w", id, err)
		}
	}
}

// sleep waits for a wake-up or d. It fails if ctx ends or the store is
// closed first.
func (r *Redis) sleep(ctx context.Context, wake <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	case <-r.closed.Done():
		return fmt.Errorf("the task store was closed: %w", ErrUnavailable)
	}
	return nil
}

// storedAnswer is an answer as answerScript stores it, beside its
// question.
type storedAnswer struct {
	Request  json.RawMessage   `json:"q"`
	Response abi.InputResponse `json:"a"`
}

func decodeAnswers(id string, keys []string, vals []any) (map[string]abi.InputResponse, error) {
	if len(vals) != len(keys) {
		return nil, fmt.Errorf("task %s: %d answers for %d keys from Redis", id, len(vals), len(keys))
	}
	out := make(map[string]abi.InputResponse, len(keys))
	for i, k := range keys {
		s, _ := vals[i].(string)
		var a storedAnswer
		if err := json.Unmarshal([]byte(s), &a); err != nil {
			return nil, fmt.Errorf("task %s: stored answer to %q: %w", id, k, err)
		}
		out[k] = a.Response
	}
	return out, nil
}

func (r *Redis) listen(id string) chan struct{} {
	ch := make(chan struct{}, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiters[id] == nil {
		r.waiters[id] = make(map[chan struct{}]struct{})
	}
	r.waiters[id][ch] = struct{}{}
	return ch
}

func (r *Redis) unlisten(id string, ch chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.waiters[id], ch)
	if len(r.waiters[id]) == 0 {
		delete(r.waiters, id)
	}
}

// wake pokes the waiters of task id, or of every task if id is "".
func (r *Redis) wake(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != "" {
		poke(r.waiters[id])
		return
	}
	for _, set := range r.waiters {
		poke(set)
	}
}

func poke(set map[chan struct{}]struct{}) {
	for ch := range set {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// dispatch reads the process's inbox until ctx ends and wakes the waiters
// of each task named there. It wakes every waiter when it loses Redis (so
// that their outage clocks start) and when it has it back (wake-ups pushed
// meanwhile are lost).
func (r *Redis) dispatch(ctx context.Context) {
	var pause backoff
	for ctx.Err() == nil {
		// BLPOP counts whole seconds; Close ends the wait by pushing "".
		vals, err := r.client.BLPop(ctx, max(r.opts.Block.Round(time.Second), time.Second), r.inbox).Result()
		if ctx.Err() != nil {
			return
		}
		if err != nil && err != redis.Nil {
			if !pause.failing() {
				r.wake("")
			}
			pause.wait(ctx)
			continue
		}
		if pause.failing() {
			pause = backoff{}
			r.wake("")
		}
		if len(vals) == 2 && vals[1] != "" {
			r.wake(vals[1])
		}
	}
}

// backoff paces retries against an unreachable Redis: 50ms doubling to 2s.
type backoff struct{ d time.Duration }

func (b *backoff) failing() bool { return b.d > 0 }

func (b *backoff) next() time.Duration {
	b.d = min(max(2*b.d, 50*time.Millisecond), 2*time.Second)
	return b.d
}

func (b *backoff) wait(ctx context.Context) {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
