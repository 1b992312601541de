package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// watchHealth is how long a watch waits for a message before it pings the
// server, and, when the ping is not answered within as long again, drops
// the connection for a fresh one. A connection that died without a word
// (a cable pulled, a NAT entry expired) is noticed within twice this.
const watchHealth = 10 * time.Second

// Watch subscribes to the events channel. It returns once the subscription
// is in place, so nothing published after it returns is missed, or an
// ErrUnavailable error if Redis cannot be reached. Later on, a lost
// connection is re-established for as long as ctx lasts, and each
// re-established subscription is announced with an EventResync: events
// published while it was away are lost, so watchers must re-read what they
// wait on.
func (r *Redis) Watch(ctx context.Context) (<-chan Event, error) {
	// The watch ends with ctx or with the store.
	ctx, cancel := context.WithCancel(ctx)
	unlink := context.AfterFunc(r.closed, cancel)
	w := &redisWatch{r: r, ctx: ctx}
	if err := w.subscribe(); err != nil {
		unlink()
		cancel()
		return nil, fmt.Errorf("watch task events: %w", err)
	}
	out := make(chan Event)
	stop := context.AfterFunc(ctx, w.close)
	go func() {
		defer close(out)
		defer cancel()
		defer unlink()
		defer stop()
		defer w.close()
		w.run(out)
	}()
	return out, nil
}

type redisWatch struct {
	r   *Redis
	ctx context.Context

	mu sync.Mutex
	ps *redis.PubSub // the current subscription; nil between two
}

// subscribe opens a subscription and waits for Redis to confirm it.
func (w *redisWatch) subscribe() error {
	ps := w.r.client.Subscribe(w.ctx, w.r.channel)
	msg, err := ps.ReceiveTimeout(w.ctx, watchHealth)
	if err == nil {
		if _, ok := msg.(*redis.Subscription); !ok {
			err = fmt.Errorf("unexpected %T before the subscription was confirmed", msg)
		}
	}
	if err != nil {
		_ = ps.Close()
		return w.r.fail(w.ctx, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ctx.Err() != nil { // the watch ended meanwhile; close has run
		_ = ps.Close()
		return w.ctx.Err()
	}
	w.ps = ps
	return nil
}

// close ends the current subscription, which also ends a receive blocked
// on it (go-redis does not end reads when a context does).
func (w *redisWatch) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ps != nil {
		_ = w.ps.Close()
		w.ps = nil
	}
}

func (w *redisWatch) current() *redis.PubSub {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ps
}

// run delivers events until the watch ends, replacing broken subscriptions.
func (w *redisWatch) run(out chan<- Event) {
	send := func(e Event) bool {
		select {
		case out <- e:
			return true
		case <-w.ctx.Done():
			return false
		}
	}
	var pause backoff
	for w.ctx.Err() == nil {
		ps := w.current()
		if ps == nil {
			if err := w.subscribe(); err != nil {
				pause.wait(w.ctx)
				continue
			}
			pause = backoff{}
			if !send(Event{Kind: EventResync}) {
				return
			}
			continue
		}
		if !w.receive(ps, send) {
			return
		}
		w.close() // broken: the next round subscribes again
	}
}

// receive reads ps until it breaks (true) or the watch ends (false).
func (w *redisWatch) receive(ps *redis.PubSub, send func(Event) bool) bool {
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(w.ctx, watchHealth)
		if w.ctx.Err() != nil {
			return false
		}
		var nerr net.Error
		switch {
		case err != nil && errors.As(err, &nerr) && nerr.Timeout() && !pinged:
			// Quiet for a while: make the server speak.
			pinged = ps.Ping(w.ctx) == nil
			if !pinged {
				return true
			}
			continue
		case err != nil:
			return true
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			var e Event
			if json.Unmarshal([]byte(m.Payload), &e) != nil {
				continue // not ours: someone else publishes on the channel
			}
			if !send(e) {
				return false
			}
		case *redis.Subscription:
			// go-redis reconnected and subscribed again on its own.
			if m.Kind == "subscribe" && !send(Event{Kind: EventResync}) {
				return false
			}
		}
	}
}
