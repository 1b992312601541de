// Package mcpserver is wasmhost's MCP front end: it serves the tools of a
// plugin catalog to MCP clients of every protocol generation, turns each
// tools/call into a task in the store, and speaks for that task to its
// client — status notifications, input requests, results.
//
// It builds on go-sdk for framing, lifecycle and transports. What go-sdk
// does not model (the tasks methods, the 2025-11-25 task field, the tasks
// capability, execution.taskSupport) is added in the smallest layer that
// works: a middleware and a connection wrapper; docs/protocol.md says why.
// It must not run guests itself (that is the worker's) nor reach into the
// store's backend.
package mcpserver

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wasmhost/wasmhost/elicit"
	"github.com/wasmhost/wasmhost/host"
	"github.com/wasmhost/wasmhost/tasks"
)

// Catalog is the set of tools, prompts and resources being served;
// *host.Catalog is one.
type Catalog interface {
	Tools() []host.ToolEntry
	Lookup(name string) (host.ToolEntry, bool)
	Prompts() []host.PromptEntry
	Resources() []host.ResourceEntry
	ResourceTemplates() []host.TemplateEntry
	// Problems include the names refused to a newcomer because another
	// plugin serves them (host.Problem.Conflict).
	Problems() []host.Problem
}

// Options configure a Server. Zero values mean the documented defaults.
type Options struct {
	Catalog Catalog
	Store   tasks.Store
	Logger  hclog.Logger
	// Version is reported as serverInfo.version.
	Version string
	// TaskTTL is how long a task is kept after creation when the client
	// asks for no TTL; 0 means 1 hour. MaxTaskTTL caps what clients ask
	// for; 0 means 24 hours.
	TaskTTL, MaxTaskTTL time.Duration
	// PollInterval is suggested to clients polling tasks/get; 0 means 1s.
	PollInterval time.Duration
	// StateKey seals the requestState of input_required results; front
	// ends sharing a store must share it. Empty means a random key, good
	// for one process.
	StateKey []byte
	// Ready, if set, is closed once the catalog has loaded; until then,
	// and at most ReadyWait after New, requests that read the catalog wait
	// for it (initialize never does). See host.CatalogOptions.Background.
	Ready     <-chan struct{}
	ReadyWait time.Duration
	// RunBudget bounds the host time spent validating one call's
	// arguments, and one answer against its requestedSchema, as the guest's
	// run time is bounded (pass the runtime's --run-budget); 0 means
	// host.DefaultRunBudget.
	RunBudget time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.TaskTTL <= 0 {
		o.TaskTTL = time.Hour
	}
	if o.MaxTaskTTL <= 0 {
		o.MaxTaskTTL = 24 * time.Hour
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
}

// Server is the MCP front end. Create it with New, serve with ServeStdio,
// and call CatalogChanged when the catalog changes.
type Server struct {
	opts    Options
	logger  hclog.Logger
	mcp     *mcp.Server
	store   tasks.Store
	watcher *tasks.Watcher
	relay   *elicit.Relay
	states  stateSigner
	stop    context.CancelFunc
	wg      sync.WaitGroup

	mu                            sync.Mutex
	prompts, resources, templates map[string]string // served, by key: their JSON

	sessions map[*mcp.ServerSession]*session
	byOwner  map[string]*session // sessions whose tasks have an owner
	tools    map[string]*servedTool
	refused  map[host.Conflict]string // names refused to newcomers, told to the clients: the newcomer's file

	infoMu    sync.Mutex
	infos     map[string]*taskInfo // routing of tasks' events, learnt once (outbox.go)
	nextSweep time.Time
	listeners map[string]*sseWriter // open standalone SSE streams, by session id (http.go)

	// Taking over HTTP sessions (revive.go); set by HTTPHandler.
	sessionStore SessionStore
	sessionTTL   time.Duration
	reviveMu     sync.RWMutex // a revival excludes new sessions: forcedID is theirs otherwise
	idMu         sync.Mutex
	forcedID     string
}

// New returns a front end serving opts.Catalog's tools from opts.Store. It
// watches the store until Close.
func New(opts Options) (*Server, error) {
	opts.setDefaults()
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{
		opts:      opts,
		logger:    opts.Logger,
		store:     opts.Store,
		relay:     elicit.NewRelay(opts.Store, opts.Logger.Named("relay")),
		states:    newStateSigner(opts.StateKey),
		stop:      stop,
		sessions:  make(map[*mcp.ServerSession]*session),
		byOwner:   make(map[string]*session),
		tools:     make(map[string]*servedTool),
		prompts:   make(map[string]string),
		resources: make(map[string]string),
		templates: make(map[string]string),
		infos:     make(map[string]*taskInfo),
		listeners: make(map[string]*sseWriter),
	}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "wasmhost", Version: opts.Version}, &mcp.ServerOptions{
		Capabilities: &mcp.ServerCapabilities{
			Logging:     &mcp.LoggingCapabilities{},
			Tools:       &mcp.ToolCapabilities{ListChanged: true},
			Prompts:     &mcp.PromptCapabilities{ListChanged: true},
			Resources:   &mcp.ResourceCapabilities{ListChanged: true, Subscribe: true},
			Completions: &mcp.CompletionCapabilities{},
			Extensions:  map[string]any{tasksExtension: map[string]any{}},
		},
		CompletionHandler: func(context.Context, *mcp.CompleteRequest) (*mcp.CompleteResult, error) {
			return &mcp.CompleteResult{Completion: mcp.CompletionResultDetails{Values: []string{}}}, nil
		},
		// A plugin's resources change only when the plugin does; a
		// subscription is accepted and list_changed tells the rest.
		SubscribeHandler:   func(context.Context, *mcp.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *mcp.UnsubscribeRequest) error { return nil },
		Logger:             slogFor(opts.Logger.Named("go-sdk")),
		GetSessionID:       s.nextSessionID,
	})
	s.mcp.AddReceivingMiddleware(s.middleware)
	if opts.Ready != nil && opts.ReadyWait > 0 {
		s.mcp.AddReceivingMiddleware(s.waitReady(time.Now()))
	}
	if err := s.addTaskMethods(); err != nil {
		stop()
		return nil, err
	}
	events, err := s.store.Watch(ctx)
	if err != nil {
		stop()
		return nil, fmt.Errorf("watch task store: %w", err)
	}
	if s.watcher, err = tasks.NewWatcher(ctx, s.store, nil); err != nil {
		stop()
		return nil, fmt.Errorf("watch task store: %w", err)
	}
	s.wg.Go(func() { s.dispatch(ctx, events) })
	s.CatalogChanged()
	return s, nil
}

// ServeStdio serves one client over in/out (the process's stdin and
// stdout) until the client disconnects or ctx ends.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	tt := &stdioTransport{in: in, out: out}
	ss, err := s.mcp.Connect(ctx, tt, nil)
	if err != nil {
		return fmt.Errorf("connect stdio client: %w", err)
	}
	s.attach(ss, tt.conn, stdioOwner)
	done := make(chan error, 1)
	go func() { done <- ss.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		ss.Close()
		err = <-done
	}
	return err
}

// Close stops relaying and watching; sessions should be closed first.
func (s *Server) Close() {
	s.relay.Close()
	s.stop()
	s.wg.Wait()
}

func (s *Server) onStatus(sess *session, t *tasks.Task, status tasks.Status) {
	if t.Kind != tasks.KindTask {
		return // a plain call's handler follows it itself
	}
	sess.notifyStatus(t, status)
	if t.Status == tasks.InputRequired && sess.pushesInput() {
		sess.pushLater(t.ID)
	}
}
