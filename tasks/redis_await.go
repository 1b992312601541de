package tasks

import (
	"context"
	"encoding/json"
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
//   - AwaitAnswers runs takeScript, which either hands over every answer at
//     once (deleting them) or adds this process's inbox to the task's
//     waiters set, in the same atomic step.
//   - Every script that changes the task (answer, new request, the end)
//     pushes the task id onto the inbox of every waiting process.
//   - One goroutine per process (dispatch) BLPOPs its inbox, Block at a
//     time, and wakes the local AwaitAnswers calls for that task, which run
//     takeScript again.
//
// A waiter also re-reads its task when it is due to expire and at least
// every awaitRecheck, and the reader wakes every waiter after it lost
// Redis for a while, so a lost wake-up costs latency, never a hang.

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
	for {
		res, err := r.run(ctx, takeScript, skeys, args...)
		if err != nil {
			return nil, fmt.Errorf("task %s: wait for answers: %w", id, err)
		}
		if res[0] == "ok" {
			return decodeAnswers(id, keys, res[1:])
		}
		if res[0] != "missing" {
			return nil, refusal(id, Working, "", res)
		}
		wait := awaitRecheck
		if pttl, ok := res[1].(int64); ok && pttl >= 0 {
			wait = min(wait, time.Duration(pttl+1)*time.Millisecond)
		}
		timer := time.NewTimer(wait)
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
		timer.Stop()
	}
}

func decodeAnswers(id string, keys []string, vals []any) (map[string]abi.InputResponse, error) {
	if len(vals) != len(keys) {
		return nil, fmt.Errorf("task %s: %d answers for %d keys from Redis", id, len(vals), len(keys))
	}
	out := make(map[string]abi.InputResponse, len(keys))
	for i, k := range keys {
		s, _ := vals[i].(string)
		var resp abi.InputResponse
		if err := json.Unmarshal([]byte(s), &resp); err != nil {
			return nil, fmt.Errorf("task %s: stored answer to %q: %w", id, k, err)
		}
		out[k] = resp
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
// of each task named there.
func (r *Redis) dispatch(ctx context.Context) {
	var pause backoff
	for ctx.Err() == nil {
		// BLPOP counts whole seconds; Close ends the wait by pushing "".
		vals, err := r.client.BLPop(ctx, max(r.opts.Block.Round(time.Second), time.Second), r.inbox).Result()
		if ctx.Err() != nil {
			return
		}
		if err != nil && err != redis.Nil {
			pause.wait(ctx)
			continue
		}
		if pause.failing() {
			pause.reset()
			r.wake("") // wake-ups pushed while Redis was away are lost
		}
		if len(vals) == 2 && vals[1] != "" {
			r.wake(vals[1])
		}
	}
}

// backoff paces retries against an unreachable Redis: 50ms doubling to 2s.
type backoff struct{ d time.Duration }

func (b *backoff) failing() bool { return b.d > 0 }
func (b *backoff) reset()        { b.d = 0 }

func (b *backoff) wait(ctx context.Context) {
	b.d = min(max(2*b.d, 50*time.Millisecond), 2*time.Second)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
