package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/abi"
)

// Mutants of the Redis store, each with one of the races the seed reviews
// found. TestRedisRaceChecksBite runs the store suite's race checks on them:
// a check that passes a mutant would not catch the race it is named for.

// RacyAnswer checks the task in Go and then writes the answer in a script:
// an answer checked before a cancellation lands after it (TOCTOU). The
// mutant makes every race go the bad way: its Answer waits between check
// and write for the task's Cancel, which waits for the check.
func RacyAnswer(r *Redis) Store { return &racyAnswer{Redis: r} }

// UnwaitedAnswer takes an answer for any key of a task that has not ended,
// pending or not.
func UnwaitedAnswer(r *Redis) Store { return unwaitedAnswer{r} }

// RacyCancel checks the task in Go and then writes "cancelled" in a
// script: a completion in between is overwritten, and both calls succeed.
// Like RacyAnswer, it makes every race go the bad way.
func RacyCancel(r *Redis) Store { return &racyCancel{Redis: r} }

// RacyStartRun checks the task in Go and then starts a run in a script: a
// cancellation in between is overwritten and the task comes back to life.
func RacyStartRun(r *Redis) Store { return &racyStartRun{Redis: r} }

// UnfencedFinish records outcomes whatever run they come from.
func UnfencedFinish(r *Redis) Store { return unfencedFinish{r} }

type (
	racyAnswer struct {
		*Redis
		interleave
	}
	racyStartRun struct {
		*Redis
		interleave
	}
	unwaitedAnswer struct{ *Redis }
	unfencedFinish struct{ *Redis }
	racyCancel     struct {
		*Redis
		interleave
	}
)

// interleave orders, per task, a racy call's check, another call, and the
// racy call's write, in that order. Each wait gives up after a second, so
// a round where the other call never comes still ends.
type interleave struct {
	mu    sync.Mutex
	tasks map[string]*rounds
}

type rounds struct{ checked, other chan struct{} }

func (i *interleave) of(id string) *rounds {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.tasks == nil {
		i.tasks = map[string]*rounds{}
	}
	if i.tasks[id] == nil {
		i.tasks[id] = &rounds{make(chan struct{}), make(chan struct{})}
	}
	return i.tasks[id]
}

func within(ch <-chan struct{}) {
	select {
	case <-ch:
	case <-time.After(time.Second):
	}
}

// checked is called by the racy call between check and write.
func (i *interleave) checked(id string) {
	r := i.of(id)
	close(r.checked)
	within(r.other)
}

// overtake runs the other call once the racy call has checked.
func (i *interleave) overtake(id string, call func() error) error {
	r := i.of(id)
	within(r.checked)
	defer close(r.other)
	return call()
}

// writeAnswerScript is answerScript without its checks.
var writeAnswerScript = redis.NewScript(scriptLib + `
local asked = redis.call('HGET', KEYS[2], ARGV[4]) or '{}'
redis.call('HDEL', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[4], '{"q":' .. asked .. ',"a":' .. ARGV[5] .. '}')
redis.call('PEXPIREAT', KEYS[3], redis.call('HGET', KEYS[1], 'exp'))
if redis.call('EXISTS', KEYS[2]) == 0 then changed('working') else changed('input_required') end
return {'ok'}
`)

// unwaitedAnswerScript checks that the task has not ended, nothing else.
var unwaitedAnswerScript = redis.NewScript(scriptLib + `
local from = redis.call('HGET', KEYS[1], 'status')
if not from then return {'notfound'} end
if terminal(from) then return {'terminal', from} end
local asked = redis.call('HGET', KEYS[2], ARGV[4]) or '{}'
redis.call('HDEL', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[4], '{"q":' .. asked .. ',"a":' .. ARGV[5] .. '}')
redis.call('PEXPIREAT', KEYS[3], redis.call('HGET', KEYS[1], 'exp'))
if redis.call('EXISTS', KEYS[2]) == 0 then changed('working') else changed('input_required') end
return {'ok'}
`)

// writeCancelScript is finishScript for "cancelled" without its checks.
var writeCancelScript = redis.NewScript(scriptLib + `
redis.call('HSET', KEYS[1], 'msg', ARGV[5])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
changed('cancelled')
return {'ok'}
`)

func (m *racyAnswer) Cancel(ctx context.Context, id, message string) error {
	return m.overtake(id, func() error { return m.Redis.Cancel(ctx, id, message) })
}

func (m *racyAnswer) Answer(ctx context.Context, id, key string, resp abi.InputResponse) error {
	st, err := m.client.HGet(ctx, m.taskKey(id), "status").Result()
	if err != nil {
		return fmt.Errorf("task %s: %w", id, ErrNotFound)
	}
	if Status(st).Terminal() {
		return transitionError(id, Status(st), Working)
	}
	if ok, _ := m.client.HExists(ctx, m.taskKey(id)+":input", key).Result(); !ok {
		return fmt.Errorf("task %s: input request %q: %w", id, key, ErrNotPending)
	}
	m.checked(id)
	b, _ := json.Marshal(resp)
	_, err = m.run(ctx, writeAnswerScript, m.keys(id, "input", "answers"), m.channel, id, stamp(time.Now()), key, b)
	return err
}

func (m unwaitedAnswer) Answer(ctx context.Context, id, key string, resp abi.InputResponse) error {
	b, _ := json.Marshal(resp)
	res, err := m.run(ctx, unwaitedAnswerScript, m.keys(id, "input", "answers"), m.channel, id, stamp(time.Now()), key, b)
	if err != nil {
		return err
	}
	return refusal(id, Working, key, res)
}

func (m *racyCancel) Complete(ctx context.Context, id string, token int64, result json.RawMessage) error {
	return m.overtake(id, func() error { return m.Redis.Complete(ctx, id, token, result) })
}

func (m *racyCancel) Fail(ctx context.Context, id string, token int64, message string) error {
	return m.overtake(id, func() error { return m.Redis.Fail(ctx, id, token, message) })
}

func (m *racyCancel) Cancel(ctx context.Context, id, message string) error {
	st, err := m.client.HGet(ctx, m.taskKey(id), "status").Result()
	if err != nil {
		return fmt.Errorf("task %s: %w", id, ErrNotFound)
	}
	if Status(st).Terminal() {
		return transitionError(id, Status(st), Cancelled)
	}
	m.checked(id)
	_, err = m.run(ctx, writeCancelScript, m.keys(id, "input", "answers", "asked"),
		m.channel, id, stamp(time.Now()), string(Cancelled), message)
	return err
}

// writeStartRunScript is startRunScript without its checks.
var writeStartRunScript = redis.NewScript(scriptLib + `
local token = redis.call('HINCRBY', KEYS[1], 'token', 1)
if redis.call('EXISTS', KEYS[2]) == 1 then changed('input_required') else changed('working') end
return {'ok', token, ''}
`)

func (m *racyStartRun) Cancel(ctx context.Context, id, message string) error {
	return m.overtake(id, func() error { return m.Redis.Cancel(ctx, id, message) })
}

func (m *racyStartRun) StartRun(ctx context.Context, id, module string) (Run, error) {
	st, err := m.client.HGet(ctx, m.taskKey(id), "status").Result()
	if err != nil {
		return Run{}, fmt.Errorf("task %s: %w", id, ErrNotFound)
	}
	if Status(st).Terminal() {
		return Run{}, transitionError(id, Status(st), Working)
	}
	m.checked(id)
	res, err := m.run(ctx, writeStartRunScript, m.keys(id, "input", "journal"), m.channel, id, stamp(time.Now()), module)
	if err != nil {
		return Run{}, err
	}
	token, _ := res[1].(int64)
	return Run{Token: token}, nil
}

func (m unfencedFinish) Complete(ctx context.Context, id string, _ int64, result json.RawMessage) error {
	return m.Redis.Complete(ctx, id, 0, result)
}

func (m unfencedFinish) Fail(ctx context.Context, id string, _ int64, message string) error {
	return m.Redis.Fail(ctx, id, 0, message)
}

// Inbox is the list a Redis store's waiting guests are woken through.
func Inbox(r *Redis) string { return r.inbox }
