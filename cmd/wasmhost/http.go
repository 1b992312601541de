package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/wasmhost/wasmhost/mcpserver"
)

// httpFlags select Streamable HTTP instead of stdio.
type httpFlags struct {
	addr         string
	allowedHosts []string
}

func (f *httpFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.addr, "http", "", "serve MCP over Streamable HTTP at ADDR (e.g. 127.0.0.1:8080), path /mcp, instead of stdio")
	cmd.Flags().StringSliceVar(&f.allowedHosts, "allow-host", nil, "host name allowed in Host/Origin headers besides loopback (DNS rebinding protection); repeatable")
}

func (f *httpFlags) serve(ctx context.Context, srv *mcpserver.Server, events mcp.EventStore, sessions mcpserver.SessionStore, logger hclog.Logger) error {
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is the port in use? pick another with --http)", f.addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", srv.HTTPHandler(mcpserver.HTTPOptions{AllowedHosts: f.allowedHosts, EventStore: events, Sessions: sessions}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("serving MCP over HTTP", "url", "http://"+ln.Addr().String()+"/mcp")
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(shutdown)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
