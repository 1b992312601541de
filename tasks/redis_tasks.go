package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmhost/wasmhost/abi"
)

// The Redis store's task records: reading them, listing them, and the
// calls that change them, each one script of redis_scripts.go.

func stamp(t time.Time) string { return t.Format(time.RFC3339Nano) }

// record is the part of a task that never changes, stored as JSON.
func record(t *Task) *Task {
	c := *t
	c.Status, c.StatusMessage, c.UpdatedAt = "", "", time.Time{}
	c.InputRequests, c.Result, c.Error = nil, nil, ""
	return &c
}

// indexMember sorts, as a string, newest first and then by id, as Memory
// does: the creation time counted down from the end of time, fixed width.
func indexMember(t *Task) string {
	ns := max(t.CreatedAt.UnixNano(), 0)
	return fmt.Sprintf("%019d:%s", math.MaxInt64-ns, t.ID)
}

func (r *Redis) Create(ctx context.Context, t *Task) error {
	if err := checkNew(t); err != nil {
		return err
	}
	rec, err := json.Marshal(record(t))
	if err != nil {
		return fmt.Errorf("task %s: encode: %w", t.ID, err)
	}
	keys := r.keys(t.ID)
	if t.Kind == KindTask {
		keys = append(keys, r.ownerKey(t.Owner))
	}
	res, err := r.run(ctx, createScript, keys, r.channel, t.ID, stamp(t.UpdatedAt), rec,
		t.ExpiresAt().UnixMilli(), time.Now().UnixMilli(), indexMember(t))
	if err != nil {
		return fmt.Errorf("task %s: create: %w", t.ID, err)
	}
	return refusal(t.ID, Working, "", res)
}

func (r *Redis) Get(ctx context.Context, id string) (*Task, error) {
	ts, err := r.getMany(ctx, []string{id})
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", id, err)
	}
	if ts[0] == nil {
		return nil, fmt.Errorf("task %s: %w", id, ErrNotFound)
	}
	return ts[0], nil
}

// getMany reads tasks in one round trip, each consistently (MULTI); a task
// that does not exist (or expired) is nil.
func (r *Redis) getMany(ctx context.Context, ids []string) ([]*Task, error) {
	type reads struct{ task, input *redis.MapStringStringCmd }
	rs := make([]reads, len(ids))
	_, err := r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			k := r.keys(id, "input")
			rs[i] = reads{p.HGetAll(ctx, k[0]), p.HGetAll(ctx, k[1])}
		}
		return nil
	})
	if err != nil {
		return nil, r.fail(ctx, err)
	}
	out := make([]*Task, len(ids))
	for i, id := range ids {
		h := rs[i].task.Val()
		if h["rec"] == "" {
			continue
		}
		t, err := decodeTask(h, rs[i].input.Val())
		if err != nil {
			return nil, fmt.Errorf("task %s: stored record: %w", id, err)
		}
		out[i] = t
	}
	return out, nil
}

func decodeTask(h, input map[string]string) (*Task, error) {
	var t Task
	if err := json.Unmarshal([]byte(h["rec"]), &t); err != nil {
		return nil, err
	}
	t.Status = Status(h["status"])
	if k := h["kind"]; k != "" {
		t.Kind = Kind(k) // changed by Detach
	}
	t.StatusMessage = h["msg"]
	t.Error = h["error"]
	if h["result"] != "" {
		t.Result = json.RawMessage(h["result"])
	}
	if u := h["updated"]; u != "" {
		var err error
		if t.UpdatedAt, err = time.Parse(time.RFC3339Nano, u); err != nil {
			return nil, err
		}
	}
	if len(input) > 0 {
		t.InputRequests = make(map[string]abi.InputRequest, len(input))
		for k, v := range input {
			var req abi.InputRequest
			if err := json.Unmarshal([]byte(v), &req); err != nil {
				return nil, fmt.Errorf("input request %q: %w", k, err)
			}
			t.InputRequests[k] = req
		}
	}
	return &t, nil
}

// List pages through the owner's index. The cursor is the index entry of
// the last task returned, so pages hold even while tasks come and go.
// Entries whose task expired are dropped from the index on the way.
func (r *Redis) List(ctx context.Context, owner, cursor string, limit int) ([]*Task, string, error) {
	if limit <= 0 {
		limit = DefaultPageSize
	}
	from := "-"
	if cursor != "" {
		if !validCursor(cursor) {
			return nil, "", fmt.Errorf("invalid cursor %q", cursor)
		}
		from = "(" + cursor
	}
	idx := r.ownerKey(owner)
	var page []*Task
	var members []string // index entries of page
	for len(page) <= limit {
		batch, err := r.client.ZRangeByLex(ctx, idx, &redis.ZRangeBy{Min: from, Max: "+", Count: int64(limit + 1 - len(page))}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("list tasks: %w", r.fail(ctx, err))
		}
		if len(batch) == 0 {
			break
		}
		ids := make([]string, len(batch))
		for i, m := range batch {
			ids[i] = m[20:]
		}
		ts, err := r.getMany(ctx, ids)
		if err != nil {
			return nil, "", fmt.Errorf("list tasks: %w", err)
		}
		var stale []any
		for i, t := range ts {
			if t == nil {
				stale = append(stale, batch[i])
				continue
			}
			page, members = append(page, t), append(members, batch[i])
		}
		if len(stale) > 0 {
			r.client.ZRem(ctx, idx, stale...) // tidying only: a failure changes no answer
		}
		from = "(" + batch[len(batch)-1]
	}
	if len(page) > limit {
		return page[:limit], members[limit-1], nil
	}
	return page, "", nil
}

func validCursor(c string) bool {
	if len(c) < 21 || c[19] != ':' {
		return false
	}
	_, err := strconv.ParseUint(c[:19], 10, 64)
	return err == nil
}

func (r *Redis) RequestInput(ctx context.Context, id string, reqs map[string]abi.InputRequest) error {
	if len(reqs) == 0 {
		return fmt.Errorf("task %s: no input requests given", id)
	}
	args := []any{r.channel, id, stamp(time.Now())}
	for k, req := range reqs {
		b, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("task %s: input request %q: %w", id, k, err)
		}
		args = append(args, k, b)
	}
	res, err := r.run(ctx, requestScript, r.keys(id, "input", "answers"), args...)
	if err != nil {
		return fmt.Errorf("task %s: record input requests: %w", id, err)
	}
	return refusal(id, InputRequired, "", res)
}

func (r *Redis) Answer(ctx context.Context, id, key string, resp abi.InputResponse) error {
	b, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("task %s: answer to %q: %w", id, key, err)
	}
	keys := append(r.keys(id, "input", "answers"), r.queue.stream)
	res, err := r.run(ctx, answerScript, keys, r.channel, id, stamp(time.Now()), key, b)
	if err != nil {
		return fmt.Errorf("task %s: record answer to %q: %w", id, key, err)
	}
	return refusal(id, Working, key, res)
}

func (r *Redis) Detach(ctx context.Context, id string) error {
	t, err := r.Get(ctx, id)
	if err != nil {
		return err
	}
	keys := append(r.keys(id), r.ownerKey(t.Owner))
	res, err := r.run(ctx, detachScript, keys, r.channel, id, stamp(time.Now()), indexMember(t))
	if err != nil {
		return fmt.Errorf("task %s: detach: %w", id, err)
	}
	return refusal(id, t.Status, "", res)
}

func (r *Redis) Complete(ctx context.Context, id string, token int64, result json.RawMessage) error {
	return r.finish(ctx, id, token, Completed, "", result)
}

func (r *Redis) Fail(ctx context.Context, id string, token int64, message string) error {
	return r.finish(ctx, id, token, Failed, message, nil)
}

func (r *Redis) Cancel(ctx context.Context, id, message string) error {
	return r.finish(ctx, id, 0, Cancelled, message, nil)
}

// finish ends the task; token 0 is unfenced.
func (r *Redis) finish(ctx context.Context, id string, token int64, to Status, message string, result json.RawMessage) error {
	res, err := r.run(ctx, finishScript, r.keys(id, "input", "answers", "journal"),
		r.channel, id, stamp(time.Now()), string(to), message, []byte(result), token)
	if err != nil {
		return fmt.Errorf("task %s: mark %s: %w", id, to, err)
	}
	return r.refusal(id, to, token, res)
}

func (r *Redis) StartRun(ctx context.Context, id, module string) (Run, error) {
	res, err := r.run(ctx, startRunScript, r.keys(id, "input", "journal"), r.channel, id, stamp(time.Now()), module)
	if err != nil {
		return Run{}, fmt.Errorf("task %s: start a run: %w", id, err)
	}
	if err := refusal(id, Working, "", res); err != nil {
		return Run{}, err
	}
	if len(res) < 3 {
		return Run{}, fmt.Errorf("task %s: unexpected reply %v from the start-run script", id, res)
	}
	token, _ := res[1].(int64)
	pinned, _ := res[2].(string)
	run := Run{Token: token, Module: pinned, Journal: make([][]byte, 0, len(res)-3)}
	for _, e := range res[3:] {
		s, _ := e.(string)
		run.Journal = append(run.Journal, []byte(s))
	}
	return run, nil
}

func (r *Redis) AppendJournal(ctx context.Context, id string, token int64, entries [][]byte, consume []string) error {
	if token <= 0 {
		return fencedError(id, token, 0)
	}
	args := make([]any, 0, 3+len(consume)+len(entries))
	args = append(args, token, r.opts.MaxJournalBytes, len(consume))
	for _, k := range consume {
		args = append(args, k)
	}
	for _, e := range entries {
		args = append(args, e)
	}
	res, err := r.run(ctx, appendScript, r.keys(id, "answers", "journal"), args...)
	if err != nil {
		return fmt.Errorf("task %s: append to the journal: %w", id, err)
	}
	return r.refusal(id, Working, token, res)
}

func (r *Redis) Park(ctx context.Context, id string, token int64) error {
	if token <= 0 {
		return fencedError(id, token, 0)
	}
	keys := append(r.keys(id, "input"), r.queue.stream)
	res, err := r.run(ctx, parkScript, keys, id, token)
	if err != nil {
		return fmt.Errorf("task %s: park: %w", id, err)
	}
	return r.refusal(id, Working, token, res)
}

// refusal is the package's refusal with the replies of run calls: fenced
// (with the current token) and full (with the size refused).
func (r *Redis) refusal(id string, to Status, token int64, res []any) error {
	arg := ""
	if len(res) > 1 {
		arg, _ = res[1].(string)
	}
	switch res[0] {
	case "fenced":
		current, _ := strconv.ParseInt(arg, 10, 64)
		return fencedError(id, token, current)
	case "full":
		size, _ := strconv.ParseInt(arg, 10, 64)
		return journalFullError(id, size, r.opts.MaxJournalBytes)
	}
	return refusal(id, to, "", res)
}

func (r *Redis) Publish(ctx context.Context, e Event) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("task %s: encode %s event: %w", e.TaskID, e.Kind, err)
	}
	if err := r.client.Publish(ctx, r.channel, b).Err(); err != nil {
		return fmt.Errorf("task %s: publish %s event: %w", e.TaskID, e.Kind, r.fail(ctx, err))
	}
	return nil
}
