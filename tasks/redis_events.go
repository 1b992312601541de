package tasks

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/redis/go-redis/v9"
)

// StreamRetention bounds what a RedisEventStore keeps of each HTTP stream.
// Zero values mean the documented defaults.
type StreamRetention struct {
	// MaxEvents is how many of a stream's latest messages are kept for
	// replay (default 1000); a client that missed more gets an error and
	// must start afresh.
	MaxEvents int
	// TTL is how long a stream is kept after its last message (default
	// 10 minutes): the longest a client may stay away and still resume.
	TTL time.Duration
}

func (o StreamRetention) withDefaults() StreamRetention {
	if o.MaxEvents <= 0 {
		o.MaxEvents = 1000
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Minute
	}
	return o
}

// ErrEventsDropped: a resuming client asked for messages that are no
// longer kept (beyond StreamRetention).
var ErrEventsDropped = errors.New("stream events no longer kept")

// RedisEventStore keeps the messages of Streamable HTTP streams in Redis so
// that a client reconnecting with Last-Event-ID gets what it missed, from
// any front end sharing the Redis and prefix. It has the method set of
// go-sdk's mcp.EventStore (this package does not import MCP). Keys, with P
// the prefix:
//
//	P:sse:{session}:<stream>     list    the stream's latest messages
//	P:sse:{session}:<stream>:n   string  messages ever appended to it
//
// Both expire StreamRetention.TTL after the last append.
type RedisEventStore struct {
	r    *Redis
	keep StreamRetention
}

// EventStore returns an event store on r's connection and prefix.
func (r *Redis) EventStore(keep StreamRetention) *RedisEventStore {
	return &RedisEventStore{r: r, keep: keep.withDefaults()}
}

func (s *RedisEventStore) streamKey(sessionID, streamID string) string {
	return s.r.opts.Prefix + ":sse:{" + sessionID + "}:" + streamID
}

// Open needs nothing: a stream's keys appear with its first message.
func (s *RedisEventStore) Open(context.Context, string, string) error { return nil }

var appendEventScript = redis.NewScript(`
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
`)

// Append records one message of a stream.
func (s *RedisEventStore) Append(ctx context.Context, sessionID, streamID string, data []byte) error {
	k := s.streamKey(sessionID, streamID)
	err := appendEventScript.Run(ctx, s.r.client, []string{k, k + ":n"}, data, s.keep.MaxEvents, s.keep.TTL.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("keep stream event: %w", s.r.fail(ctx, err))
	}
	return nil
}

// After yields the messages of a stream after index (go-sdk counts a
// stream's messages from 0), or one error when some of them are no longer
// kept.
func (s *RedisEventStore) After(ctx context.Context, sessionID, streamID string, index int) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		k := s.streamKey(sessionID, streamID)
		var count *redis.StringCmd
		var list *redis.StringSliceCmd
		_, err := s.r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			count = p.Get(ctx, k+":n")
			list = p.LRange(ctx, k, 0, -1)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			yield(nil, fmt.Errorf("replay stream: %w", s.r.fail(ctx, err)))
			return
		}
		n, _ := count.Int()
		items := list.Val()
		first := n - len(items) // index of items[0]
		start := index + 1 - first
		if start < 0 || (n == 0 && index >= 0) {
			yield(nil, fmt.Errorf("stream %s of session %s after event %d: %w", streamID, sessionID, index, ErrEventsDropped))
			return
		}
		for _, it := range items[min(start, len(items)):] {
			if !yield([]byte(it), nil) {
				return
			}
		}
	}
}

// SessionClosed does nothing: go-sdk calls it also when a front end shuts
// down, and the session's streams must outlive that for a client to resume
// them on another front end. They expire StreamRetention.TTL after their
// last message. ForgetSession deletes them at once.
func (s *RedisEventStore) SessionClosed(context.Context, string) error { return nil }

// ForgetSession deletes every stream of the session.
func (s *RedisEventStore) ForgetSession(ctx context.Context, sessionID string) error {
	// The session id, braced, is the hash tag: one slot on a cluster.
	iter := s.r.client.Scan(ctx, 0, s.r.opts.Prefix+":sse:{"+escapeGlob(sessionID)+"}:*", 100).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("forget session streams: %w", s.r.fail(ctx, err))
	}
	if len(keys) > 0 {
		if err := s.r.client.Del(ctx, keys...).Err(); err != nil {
			return fmt.Errorf("forget session streams: %w", s.r.fail(ctx, err))
		}
	}
	return nil
}

// escapeGlob quotes the characters SCAN MATCH treats specially.
func escapeGlob(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// SaveSession keeps what a front end needs to take an HTTP session over
// (its initialize params and log level, as mcpserver encodes them) for ttl, under P:session:{id}.
func (r *Redis) SaveSession(ctx context.Context, id string, data []byte, ttl time.Duration) error {
	if err := r.client.Set(ctx, r.opts.Prefix+":session:{"+id+"}", data, ttl).Err(); err != nil {
		return fmt.Errorf("keep session %s: %w", id, r.fail(ctx, err))
	}
	return nil
}

// LoadSession returns what SaveSession kept, or ErrNotFound.
func (r *Redis) LoadSession(ctx context.Context, id string) ([]byte, error) {
	data, err := r.client.Get(ctx, r.opts.Prefix+":session:{"+id+"}").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load session %s: %w", id, r.fail(ctx, err))
	}
	return data, nil
}

// DeleteSession forgets what SaveSession kept.
func (r *Redis) DeleteSession(ctx context.Context, id string) error {
	if err := r.client.Del(ctx, r.opts.Prefix+":session:{"+id+"}").Err(); err != nil {
		return fmt.Errorf("forget session %s: %w", id, r.fail(ctx, err))
	}
	return nil
}
