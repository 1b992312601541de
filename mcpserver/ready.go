package mcpserver

import (
	"context"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// unknownToolWait bounds how long a call naming a tool the catalog does not
// have yet waits for the catalog to finish loading. A large plugin (an
// 11 MiB Go guest that imports net/http) takes seconds to compile, minutes
// on a busy machine; the client's own request timeout usually ends the wait
// sooner.
const unknownToolWait = 5 * time.Minute

// waitReady holds requests that read the catalog while it is still
// loading. Lists (and reads) wait until it has loaded or ReadyWait has
// passed since New, whichever comes first; then they are served from what
// is there, and notifications/*/list_changed tells the client about the
// rest. A tools/call of a tool already loaded goes at once; one naming a
// tool not (yet) there waits for the catalog to finish, up to
// unknownToolWait, since the tool may be in a plugin still loading.
// initialize and everything else pass at once.
func (s *Server) waitReady(start time.Time) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if readsCatalog(method) {
				until := start.Add(s.opts.ReadyWait)
				if call, ok := req.(*mcp.CallToolRequest); ok && call.Params != nil {
					if _, known := s.opts.Catalog.Lookup(call.Params.Name); known {
						return next(ctx, method, req)
					}
					until = time.Now().Add(unknownToolWait)
				}
				s.awaitReady(ctx, until)
			}
			return next(ctx, method, req)
		}
	}
}

// awaitReady returns once the catalog has loaded, until has passed or ctx
// has ended.
func (s *Server) awaitReady(ctx context.Context, until time.Time) {
	select {
	case <-s.opts.Ready:
		return
	default:
	}
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	select {
	case <-s.opts.Ready:
	case <-t.C:
	case <-ctx.Done():
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
