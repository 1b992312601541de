package mcpserver

import (
	"context"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// slogFor hands go-sdk's slog output to our hclog logger, so that every
// line wasmhost prints goes to one place (stderr), never to stdout.
func slogFor(l hclog.Logger) *slog.Logger { return slog.New(&hclogHandler{l: l}) }

type hclogHandler struct {
	l     hclog.Logger
	attrs []any
}

func (h *hclogHandler) Enabled(_ context.Context, level slog.Level) bool {
	return h.l.IsDebug() || level >= slog.LevelInfo
}

func (h *hclogHandler) Handle(_ context.Context, r slog.Record) error {
	args := append([]any(nil), h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		args = append(args, a.Key, a.Value.Any())
		return true
	})
	level := hclog.Debug
	switch {
	case r.Level >= slog.LevelError:
		level = hclog.Error
	case r.Level >= slog.LevelWarn:
		level = hclog.Warn
	case r.Level >= slog.LevelInfo:
		level = hclog.Info
	}
	h.l.Log(level, r.Message, args...)
	return nil
}

func (h *hclogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	next := &hclogHandler{l: h.l, attrs: append([]any(nil), h.attrs...)}
	for _, a := range attrs {
		next.attrs = append(next.attrs, a.Key, a.Value.Any())
	}
	return next
}

func (h *hclogHandler) WithGroup(name string) slog.Handler {
	return &hclogHandler{l: h.l.Named(name), attrs: h.attrs}
}
