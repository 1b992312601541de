// Package guesthttp gives a wasmhost plugin a standard *http.Client whose
// requests wasmhost performs through the capability import (guests have no
// sockets), under the operator's grants: plugin authors write ordinary
// net/http code. It owns only the translation between net/http and the
// ABI's HTTPRequest/HTTPResponse; the policy (which hosts, methods, paths,
// addresses, sizes and times) is the host's.
//
// It is a package of its own, not part of package guest, so that plugins
// that never make a request do not link net/http (megabytes of code and
// milliseconds of start-up in every instance).
//
//	func init() {
//		guest.NeedHost("api.github.com", "to list your issues")
//		guest.Register(guest.Tool{Name: "issues"}, func(c *guest.Call, in In) (guest.Text, error) {
//			resp, err := guesthttp.Client(c).Get("https://api.github.com/repos/" + in.Repo + "/issues")
//			...
//		})
//	}
//
// # Notes
//
//   - Each request is one round trip through the host, which follows
//     redirects itself (re-checking each against the grants) and returns the
//     final response with its body read whole, up to the grant's limit.
//   - A refused request fails with an error wrapping a *guest.CapabilityError
//     (errors.Is(err, guest.ErrNotGranted) when a grant is missing); its
//     message says how to add the grant: pass it on to the model.
package guesthttp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/sdk/guest"
)

// Client returns an *http.Client whose requests go through wasmhost for the
// call c. It is valid only while c's handler runs.
func Client(c *guest.Call) *http.Client {
	return &http.Client{
		Transport: &Transport{Call: c},
		// The host followed the redirects; a 3xx here is final.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Transport is an http.RoundTripper over the capability import.
type Transport struct {
	Call *guest.Call
}

// RoundTrip sends req through wasmhost and returns its response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, abi.MaxHTTPRequestBody+1))
		if err != nil {
			return nil, fmt.Errorf("guesthttp: reading the request body: %w", err)
		}
		if len(body) > abi.MaxHTTPRequestBody {
			return nil, fmt.Errorf("guesthttp: the request body is over wasmhost's limit of %d bytes", abi.MaxHTTPRequestBody)
		}
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	res, err := t.Call.Capability(abi.CapabilityRequest{Op: abi.OpHTTP, HTTP: &abi.HTTPRequest{
		Method: method,
		URL:    req.URL.String(),
		Header: req.Header,
		Body:   body,
	}})
	if err != nil {
		return nil, err
	}
	if res.HTTP == nil {
		return nil, fmt.Errorf("guesthttp: wasmhost answered without a response")
	}
	h := http.Header(res.HTTP.Header)
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", res.HTTP.Status, http.StatusText(res.HTTP.Status)),
		StatusCode:    res.HTTP.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(res.HTTP.Body)),
		ContentLength: int64(len(res.HTTP.Body)),
		Request:       req,
	}, nil
}
