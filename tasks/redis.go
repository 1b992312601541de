package tasks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Redis is the Store shared by front ends and workers in distributed mode.
// docs/redis.md describes the key layout, the scripts and what happens when
// Redis restarts; in short, with P the prefix:
//
//	P:task:{id}             hash    rec (immutable JSON), status, msg, updated,
//	                                result, error, exp (expiry, unix ms),
//	                                kind (set by Detach; overrides rec's),
//	                                token (current run), module (pinned
//	                                digest), jbytes (journal size), parked
//	P:task:{id}:input       hash    pending input requests, key → JSON
//	P:task:{id}:answers     hash    answers not yet consumed, key →
//	                                {"q":request,"a":response}
//	P:task:{id}:journal     list    journal entries, oldest first
//	P:task:{id}:waiters     set     inboxes of processes waiting on answers
//	P:owner:<owner>         zset    List index of KindTask tasks
//	P:inbox:<random>        list    wake-ups for this process's waiters
//	P:events                channel status, log and progress events (JSON)
//	P:queue                 stream  work queue, consumer group "workers"
//
// Every task key expires with the task (PEXPIREAT CreatedAt+TTL).
type Redis struct {
	opts    RedisOptions
	client  *redis.Client
	where   string // the server, for messages (no password)
	channel string
	inbox   string
	queue   *redisQueue

	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{} // AwaitAnswers calls by task

	closed    context.Context // done once Close has begun
	stop      context.CancelFunc
	workers   sync.WaitGroup
	closeOnce sync.Once
}

// RedisOptions configures NewRedis. Zero fields take their defaults.
type RedisOptions struct {
	// URL of the server: redis://[[user]:password@]host[:port][/db], or
	// rediss:// for TLS. Required.
	URL string
	// Prefix starts every key and the events channel (default "wasmhost").
	// Processes that share a Redis and a prefix share tasks, events and the
	// queue; give each deployment (and each test) its own.
	Prefix string
	// ClaimIdle is how long a queue entry may go unacknowledged without a
	// heartbeat from its worker's process before another worker takes it
	// over (default 30s). A live process refreshes its entries every
	// ClaimIdle/3, however long a guest runs or waits for a person, so only
	// the work of a process that died (or lost Redis for longer than
	// ClaimIdle) moves.
	ClaimIdle time.Duration
	// Block bounds every blocking Redis call (default 5s): a queue read and
	// the reader that wakes AwaitAnswers. Contexts end waits at once
	// whatever Block is; it sets how often an idle worker looks for work
	// that a dead one left behind.
	Block time.Duration
	// Consumer names this process in the queue's consumer group, as
	// XINFO CONSUMERS shows it (default host-pid-random).
	Consumer string
	// MaxJournalBytes bounds each task's journal (default
	// DefaultMaxJournalBytes).
	MaxJournalBytes int64
}

const (
	defaultPrefix    = "wasmhost"
	defaultClaimIdle = 30 * time.Second
	defaultBlock     = 5 * time.Second
	queueGroup       = "workers"
)

func (o RedisOptions) withDefaults() RedisOptions {
	if o.Prefix == "" {
		o.Prefix = defaultPrefix
	}
	if o.ClaimIdle <= 0 {
		o.ClaimIdle = defaultClaimIdle
	}
	if o.Block <= 0 {
		o.Block = defaultBlock
	}
	if o.MaxJournalBytes <= 0 {
		o.MaxJournalBytes = DefaultMaxJournalBytes
	}
	if o.Consumer == "" {
		host, _ := os.Hostname()
		o.Consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), randomHex(4))
	}
	return o
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewRedis connects to Redis, checks that it answers and that it is recent
// enough, and starts the process's wake-up reader and queue heartbeat.
// Close stops them.
func NewRedis(ctx context.Context, opts RedisOptions) (*Redis, error) {
	opts = opts.withDefaults()
	if opts.URL == "" {
		return nil, errors.New("tasks: no Redis URL given (want redis://host:port)")
	}
	ro, err := redis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("tasks: Redis URL %q: %v (want redis://[user:password@]host:port[/db])", redactURL(opts.URL), err)
	}
	// A command whose reply was lost may have run: retrying a script could
	// apply an answer or a cancellation twice. Callers see ErrUnavailable
	// and decide.
	ro.MaxRetries = -1
	ro.DialTimeout = 3 * time.Second
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	client := redis.NewClient(ro)
	where := redactURL(opts.URL)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("tasks: cannot reach Redis at %s: %v; check the URL and that redis-server is running and accepts connections from this host: %w",
			where, err, ErrUnavailable)
	}
	if err := checkVersion(ctx, client); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("tasks: Redis at %s: %w", where, err)
	}
	bg, stop := context.WithCancel(context.Background())
	r := &Redis{
		opts:    opts,
		client:  client,
		where:   where,
		channel: opts.Prefix + ":events",
		inbox:   opts.Prefix + ":inbox:" + randomHex(12),
		waiters: make(map[string]map[chan struct{}]struct{}),
		closed:  bg,
		stop:    stop,
	}
	r.queue = newRedisQueue(r)
	if err := r.queue.ensureGroup(ctx); err != nil {
		stop()
		_ = client.Close()
		return nil, fmt.Errorf("tasks: create the queue's consumer group: %w", r.fail(ctx, err))
	}
	r.workers.Go(func() { r.dispatch(bg) })
	r.workers.Go(func() { r.queue.heartbeat(bg) })
	return r, nil
}

// checkVersion refuses servers without XAUTOCLAIM (Redis 6.2).
func checkVersion(ctx context.Context, c *redis.Client) error {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return err
	}
	for line := range strings.SplitSeq(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:")
		if !ok {
			continue
		}
		var major, minor int
		if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err == nil && (major < 6 || major == 6 && minor < 2) {
			return fmt.Errorf("version %s is too old: the task store needs Redis 6.2 or later", v)
		}
	}
	return nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Close stops the background work and closes the connections. Waits in
// progress end at once with ErrUnavailable errors, watches end (their
// channels close); Close is idempotent.
func (r *Redis) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		r.client.RPush(ctx, r.inbox, "") // end the wake-up reader's BLPOP now
		r.workers.Wait()
		r.client.Del(ctx, r.inbox)
		r.queue.retire(ctx)
		err = r.client.Close()
	})
	return err
}

func (r *Redis) taskKey(id string) string     { return r.opts.Prefix + ":task:{" + id + "}" }
func (r *Redis) ownerKey(owner string) string { return r.opts.Prefix + ":owner:" + owner }
func (r *Redis) keys(id string, subs ...string) []string {
	tk := r.taskKey(id)
	ks := []string{tk}
	for _, s := range subs {
		ks = append(ks, tk+":"+s)
	}
	return ks
}

// fail turns a go-redis error into one callers can branch on: the context's
// error if it ended, ErrUnavailable if Redis could not be reached or cannot
// serve now, else the error itself.
func (r *Redis) fail(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if transient(err) {
		return fmt.Errorf("redis at %s: %v: %w", r.where, err, ErrUnavailable)
	}
	return fmt.Errorf("redis at %s: %w", r.where, err)
}

func transient(err error) bool {
	var reply redis.Error
	if !errors.As(err, &reply) {
		return true // network, pool exhausted, client closed
	}
	for _, code := range []string{"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "READONLY", "CLUSTERDOWN"} {
		if strings.HasPrefix(err.Error(), code) {
			return true
		}
	}
	return false
}

// run runs a task script and returns its reply.
func (r *Redis) run(ctx context.Context, s *redis.Script, keys []string, args ...any) ([]any, error) {
	res, err := s.Run(ctx, r.client, keys, args...).Slice()
	if err != nil {
		return nil, r.fail(ctx, err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redis at %s: empty reply from a task script", r.where)
	}
	return res, nil
}

// refusal turns a script's reply into nil ("ok") or the error callers
// branch on; to is the status the call was moving the task to.
func refusal(id string, to Status, key string, res []any) error {
	arg := func() string {
		if len(res) > 1 {
			s, _ := res[1].(string)
			return s
		}
		return ""
	}
	switch res[0] {
	case "ok":
		return nil
	case "notfound":
		return fmt.Errorf("task %s: %w", id, ErrNotFound)
	case "terminal", "illegal":
		return transitionError(id, Status(arg()), to)
	case "notpending":
		return fmt.Errorf("task %s: input request %q: %w", id, key, ErrNotPending)
	case "reused":
		return fmt.Errorf("task %s: input request key %q is still in use", id, arg())
	case "exists":
		return fmt.Errorf("task %s already exists", id)
	}
	return fmt.Errorf("task %s: unexpected reply %v from a task script", id, res)
}

func (r *Redis) Queue() Queue { return r.queue }

// SharedKeySize is the length of the keys SharedKey makes.
const SharedKeySize = 32

// SharedKey returns the secret named name that every process sharing this
// Redis and prefix agrees on: the first process to ask stores SharedKeySize
// random bytes at P:key:<name> (never expiring), and every later one reads
// them. Front ends use it to seal the requestState of 2026-07-28
// input_required results, so that a state issued by one front end opens in
// another.
//
// The key lives as long as Redis keeps its data. A Redis that restarts
// without its data makes a new one for the next process that asks, while
// processes already running keep the one they read; see docs/redis.md.
func (r *Redis) SharedKey(ctx context.Context, name string) ([]byte, error) {
	if name == "" || strings.ContainsAny(name, ":{} ") {
		return nil, fmt.Errorf("tasks: shared key name %q: want a non-empty name without ':', '{', '}' or spaces", name)
	}
	proposal := make([]byte, SharedKeySize)
	if _, err := rand.Read(proposal); err != nil {
		return nil, fmt.Errorf("tasks: shared key %s: %w", name, err)
	}
	v, err := sharedKeyScript.Run(ctx, r.client, []string{r.opts.Prefix + ":key:" + name}, proposal).Text()
	if err != nil {
		return nil, fmt.Errorf("tasks: shared key %s: %w", name, r.fail(ctx, err))
	}
	if len(v) != SharedKeySize {
		return nil, fmt.Errorf("tasks: shared key %s in Redis at %s is %d bytes, want %d; delete %s:key:%s to make a new one",
			name, r.where, len(v), SharedKeySize, r.opts.Prefix, name)
	}
	return []byte(v), nil
}
