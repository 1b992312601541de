package tasks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// The queue is the stream P:queue read by the consumer group "workers".
//
//   - Enqueue: XADD P:queue * task <id>.
//   - Next: first XAUTOCLAIM (reclaimScript) an entry that has been idle for
//     ClaimIdle (its consumer's process is gone): a Delivery with
//     Redelivered() true. Otherwise XREADGROUP … BLOCK Block … ">" for a new
//     one. An ended context ends the BLOCK at once (CLIENT UNBLOCK).
//   - Heartbeat: every ClaimIdle/3 the process XCLAIMs its own unacknowledged
//     entries again (JUSTID, min-idle 0), which resets their idle time, so a
//     guest may run or wait for a person for hours without its entry being
//     taken over. An entry that another consumer took over meanwhile (this
//     process was cut off for longer than ClaimIdle) is left to it.
//   - Ack: XACK and XDEL; idempotent. Drop: the same, only while the entry
//     is still this consumer's (a fenced-off run must not acknowledge the
//     entry of the worker that took its task over).
type redisQueue struct {
	r        *Redis
	stream   string
	consumer string

	// registered: this consumer is in the group (register), so that it
	// shows in XINFO CONSUMERS while it waits.
	registered atomic.Bool

	mu       sync.Mutex
	inflight map[string]*redisDelivery // by entry id: handed out, not acknowledged
	cursor   string                    // where the next XAUTOCLAIM scan starts
}

// unavailablePause is how long Next waits before it reports that Redis is
// unreachable, so that a worker looping on Next does not spin.
const unavailablePause = time.Second

// reclaimRounds bounds one reclaim scan to this many XAUTOCLAIM pages of
// ten pending entries each.
const reclaimRounds = 10

func newRedisQueue(r *Redis) *redisQueue {
	return &redisQueue{
		r:        r,
		stream:   r.opts.Prefix + ":queue",
		consumer: r.opts.Consumer,
		inflight: make(map[string]*redisDelivery),
		cursor:   "0-0",
	}
}

// ensureGroup creates the stream and its group unless they exist; a Redis
// that restarted without its data needs them again.
func (q *redisQueue) ensureGroup(ctx context.Context) error {
	err := q.r.client.XGroupCreateMkStream(ctx, q.stream, queueGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return err
	}
	return nil
}

func (q *redisQueue) Enqueue(ctx context.Context, taskID string) error {
	err := q.r.client.XAdd(ctx, &redis.XAddArgs{Stream: q.stream, Values: []any{"task", taskID}}).Err()
	if err != nil {
		return fmt.Errorf("task %s: enqueue: %w", taskID, q.r.fail(ctx, err))
	}
	return nil
}

func (q *redisQueue) Next(ctx context.Context) (Delivery, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var d *redisDelivery
		err := q.register(ctx)
		if err == nil {
			d, err = q.reclaim(ctx)
		}
		if d == nil && err == nil {
			d, err = q.read(ctx)
		}
		if d != nil {
			return d, nil
		}
		if err == nil {
			continue // nothing within Block: look for abandoned work again
		}
		if strings.Contains(err.Error(), "NOGROUP") {
			q.registered.Store(false) // a new group has no consumers
			if err = q.ensureGroup(ctx); err == nil {
				continue
			}
		}
		err = q.r.fail(ctx, err)
		if errors.Is(err, ErrUnavailable) {
			t := time.NewTimer(unavailablePause)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		return nil, fmt.Errorf("take work from the queue: %w", err)
	}
}

// register adds this consumer to the group once. A blocked XREADGROUP
// does not (Redis 7.0 creates a consumer only when it serves one), so an
// idle worker would not show in XINFO CONSUMERS: invisible to an operator
// and to anything waiting for workers to be ready.
func (q *redisQueue) register(ctx context.Context) error {
	if q.registered.Load() {
		return nil
	}
	if err := q.r.client.XGroupCreateConsumer(ctx, q.stream, queueGroup, q.consumer).Err(); err != nil {
		return err
	}
	q.registered.Store(true)
	return nil
}

// reclaim takes over one entry abandoned by a dead consumer, if any.
func (q *redisQueue) reclaim(ctx context.Context) (*redisDelivery, error) {
	q.mu.Lock()
	cursor := q.cursor
	q.mu.Unlock()
	res, err := reclaimScript.Run(ctx, q.r.client, []string{q.stream},
		queueGroup, q.consumer, q.r.opts.ClaimIdle.Milliseconds(), cursor, reclaimRounds).StringSlice()
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.cursor = res[0]
	if len(res) < 2 {
		return nil, nil
	}
	id := res[1]
	if q.inflight[id] != nil {
		return nil, nil // our own, late with its heartbeat: still being worked on
	}
	return q.track(id, entryTask(res[2:]), true), nil
}

// read waits up to Block for a new entry.
func (q *redisQueue) read(ctx context.Context) (*redisDelivery, error) {
	block := q.r.opts.Block
	if dl, ok := ctx.Deadline(); ok {
		block = max(min(block, time.Until(dl)), time.Millisecond)
	}
	cn := q.r.client.Conn()
	defer cn.Close()
	cid, err := cn.ClientID(ctx).Result()
	if err != nil {
		return nil, err
	}
	unblocked := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(unblocked)
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		q.r.client.ClientUnblock(uctx, cid)
	})
	defer func() {
		if !stop() {
			<-unblocked
		}
	}()
	streams, err := cn.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    queueGroup,
		Consumer: q.consumer,
		Streams:  []string{q.stream, ">"},
		Count:    1,
		Block:    block,
	}).Result()
	if err == redis.Nil || (err == nil && (len(streams) == 0 || len(streams[0].Messages) == 0)) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := streams[0].Messages[0]
	task, _ := m.Values["task"].(string)
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.track(m.ID, task, false), nil
}

func entryTask(fields []string) string {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] == "task" {
			return fields[i+1]
		}
	}
	return ""
}

// track records a handed-out entry for the heartbeat; q.mu is held.
func (q *redisQueue) track(id, task string, redelivered bool) *redisDelivery {
	d := &redisDelivery{q: q, id: id, task: task, redelivered: redelivered}
	q.inflight[id] = d
	return d
}

// heartbeat keeps the process's unacknowledged entries fresh until ctx
// ends.
func (q *redisQueue) heartbeat(ctx context.Context) {
	tick := time.NewTicker(q.r.opts.ClaimIdle / 3)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		q.mu.Lock()
		args := make([]any, 0, 2+len(q.inflight))
		args = append(args, queueGroup, q.consumer)
		for id := range q.inflight {
			args = append(args, id)
		}
		q.mu.Unlock()
		if len(args) == 2 {
			continue
		}
		lost, err := heartbeatScript.Run(ctx, q.r.client, []string{q.stream}, args...).StringSlice()
		if err != nil {
			continue // Redis is away: try again next tick
		}
		q.mu.Lock()
		for _, id := range lost {
			delete(q.inflight, id) // acknowledged, or another consumer's now
		}
		q.mu.Unlock()
	}
}

// retire removes this process's consumer from the group if it holds no
// entries, so that the group lists only live or crashed consumers.
func (q *redisQueue) retire(ctx context.Context) {
	pending, err := q.r.client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: q.stream, Group: queueGroup, Start: "-", End: "+", Count: 1, Consumer: q.consumer,
	}).Result()
	if err == nil && len(pending) == 0 {
		q.r.client.XGroupDelConsumer(ctx, q.stream, queueGroup, q.consumer)
	}
}

// redisDelivery is one queue entry handed to this process.
type redisDelivery struct {
	q           *redisQueue
	id, task    string
	redelivered bool
}

func (d *redisDelivery) TaskID() string    { return d.task }
func (d *redisDelivery) Redelivered() bool { return d.redelivered }

// Ack acknowledges and deletes the entry, whoever holds it now: the work is
// done, so a worker that took it over finds the task finished.
func (d *redisDelivery) Ack(ctx context.Context) error {
	if err := ackScript.Run(ctx, d.q.r.client, []string{d.q.stream}, queueGroup, d.id).Err(); err != nil {
		return fmt.Errorf("task %s: acknowledge queue entry %s: %w", d.task, d.id, d.q.r.fail(ctx, err))
	}
	d.q.mu.Lock()
	delete(d.q.inflight, d.id)
	d.q.mu.Unlock()
	return nil
}

// Drop acknowledges and deletes the entry if this consumer still holds it;
// an entry another worker reclaimed is that worker's to acknowledge.
func (d *redisDelivery) Drop(ctx context.Context) error {
	if err := dropScript.Run(ctx, d.q.r.client, []string{d.q.stream}, queueGroup, d.q.consumer, d.id).Err(); err != nil {
		return fmt.Errorf("task %s: drop queue entry %s: %w", d.task, d.id, d.q.r.fail(ctx, err))
	}
	d.q.mu.Lock()
	delete(d.q.inflight, d.id)
	d.q.mu.Unlock()
	return nil
}
