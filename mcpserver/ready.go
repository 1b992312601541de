package mcpserver

import (
	"context"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// waitReady holds requests that read the catalog (lists, calls, reads)
// while the catalog is still loading, until it has loaded or ReadyWait has
// passed since New, whichever comes first; then they are served from what
// is there, and notifications/*/list_changed tells the client about the
// rest. initialize and everything else pass at once, so a client is
// answered at once and never waits past ReadyWait.
func (s *Server) waitReady(start time.Time) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if readsCatalog(method) {
				select {
				case <-s.opts.Ready:
				default:
					t := time.NewTimer(time.Until(start.Add(s.opts.ReadyWait)))
					select {
					case <-s.opts.Ready:
					case <-t.C:
					case <-ctx.Done():
					}
					t.Stop()
				}
			}
			return next(ctx, method, req)
		}
	}
}

func readsCatalog(method string) bool {
	for _, p := range []string{"tools/", "prompts/", "resources/"} {
		if strings.HasPrefix(method, p) {
			return true
		}
	}
	return false
}
