package elicit

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/tasks"
)

// Client is a connected MCP client that takes server-to-client requests
// (protocol versions before 2026-07-28).
type Client interface {
	// Ask sends req to the client on behalf of task t and returns the
	// client's result. ctx ending means the client went away.
	Ask(ctx context.Context, t *tasks.Task, req abi.InputRequest) (json.RawMessage, error)
}

// Relay pushes a task's pending input requests to its client, each at most
// once at a time, and records the answers in the store. Its goroutines are
// tracked: Close stops them and waits.
type Relay struct {
	store  tasks.Store
	logger hclog.Logger

	base context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu       sync.Mutex
	inFlight map[inputKey]*delivery
}

type inputKey struct{ task, key string }

// delivery is one question out at a client. retry is a later Push's
// client, to ask in turn if this delivery ends without an answer.
type delivery struct {
	retry *asker
}

type asker struct {
	ctx context.Context
	c   Client
}

// NewRelay returns a relay writing answers to store.
func NewRelay(store tasks.Store, logger hclog.Logger) *Relay {
	base, stop := context.WithCancel(context.Background())
	return &Relay{store: store, logger: logger, base: base, stop: stop, inFlight: make(map[inputKey]*delivery)}
}

// Push sends every pending request of t to c, unless it is already out. It
// returns at once; answers reach the store as they come. A delivery ends
// with ctx (the client's session or request), leaving its request pending;
// if another Push came meanwhile (say the client reconnected and called
// tasks/result), that client is asked next.
func (r *Relay) Push(ctx context.Context, c Client, t *tasks.Task) {
	for key, req := range t.InputRequests {
		k := inputKey{t.ID, key}
		r.mu.Lock()
		d, busy := r.inFlight[k]
		if busy {
			d.retry = &asker{ctx, c}
		} else {
			r.inFlight[k] = &delivery{}
			r.wg.Add(1)
			go r.deliver(asker{ctx, c}, t, k, req)
		}
		r.mu.Unlock()
	}
}

// deliver asks one client after another until one answers or none is left.
func (r *Relay) deliver(a asker, t *tasks.Task, k inputKey, req abi.InputRequest) {
	defer r.wg.Done()
	for {
		answered := r.ask(a, t, k, req)
		r.mu.Lock()
		next := r.inFlight[k].retry
		if answered || next == nil || r.base.Err() != nil {
			delete(r.inFlight, k)
			r.mu.Unlock()
			return
		}
		r.inFlight[k].retry = nil
		r.mu.Unlock()
		a = *next
	}
}

// ask puts one question to one client and records the answer; it reports
// false when the client left before answering.
func (r *Relay) ask(a asker, t *tasks.Task, k inputKey, req abi.InputRequest) bool {
	c := a.c
	ctx, cancel := context.WithCancel(a.ctx)
	defer cancel()
	defer context.AfterFunc(r.base, cancel)()

	result, err := c.Ask(ctx, t, req)
	if ctx.Err() != nil {
		return false // the client left or we are shutting down: the request stays pending
	}
	resp := abi.InputResponse{Result: result}
	if err != nil {
		r.logger.Warn("client could not answer input request", "task", t.ID, "key", k.key, "method", req.Method, "error", err)
		resp = Failed(err)
	}
	err = r.store.Answer(context.WithoutCancel(ctx), t.ID, k.key, resp)
	switch {
	case err == nil:
	case errors.Is(err, tasks.ErrTerminal), errors.Is(err, tasks.ErrNotPending):
		r.logger.Debug("answer arrived after the task moved on", "task", t.ID, "key", k.key, "error", err)
	default:
		r.logger.Error("could not record answer", "task", t.ID, "key", k.key, "error", err)
	}
	return true
}

// Close stops every delivery in flight and waits for them.
func (r *Relay) Close() {
	r.stop()
	r.wg.Wait()
}
