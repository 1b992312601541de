package host

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/grants"
)

// httpCaps performs guests' HTTP requests. There is one per Runtime with
// two transports: one that dials public addresses only and one that may
// also dial loopback and private ones, for hosts granted "private". Both
// check the address actually dialled (after DNS), so a name that resolves
// to 127.0.0.1, at first or on a second lookup (DNS rebinding), is refused
// just like the literal. Neither uses a proxy from the environment, which
// would dial on the guest's behalf where the check cannot see.
type httpCaps struct {
	public, private *http.Transport
}

func newHTTPCaps(roots *x509.CertPool) *httpCaps {
	mk := func(allowPrivate bool) *http.Transport {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
		if !allowPrivate {
			d.Control = checkDialled
		}
		return &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := d.DialContext(ctx, network, addr)
				var he *httpError
				if errors.As(err, &he) {
					host, _, _ := net.SplitHostPort(addr)
					return nil, &httpError{code: he.code, msg: fmt.Sprintf("%s resolves to %s", host, he.msg)}
				}
				return c, err
			},
			// Verification stays on: no InsecureSkipVerify anywhere.
			TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    10 * time.Second,
			ResponseHeaderTimeout:  0, // the grant's timeout bounds the whole request
			MaxIdleConns:           64,
			MaxIdleConnsPerHost:    8,
			IdleConnTimeout:        90 * time.Second,
			ForceAttemptHTTP2:      true,
			MaxResponseHeaderBytes: 64 << 10,
		}
	}
	return &httpCaps{public: mk(false), private: mk(true)}
}

func (h *httpCaps) close() {
	h.public.CloseIdleConnections()
	h.private.CloseIdleConnections()
}

// httpError is a refusal by the host's own rules, with the abi.Cap* code
// the guest sees.
type httpError struct{ code, msg string }

func (e *httpError) Error() string { return e.msg }

func refuse(format string, args ...any) error {
	return &httpError{code: abi.CapRefused, msg: fmt.Sprintf(format, args...)}
}

// checkDialled is the dialer's Control hook: it sees the IP and port about
// to be connected, after resolution.
func checkDialled(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refuse("an address that cannot be checked (%s)", address)
	}
	if kind := nonPublic(ap.Addr().Unmap()); kind != "" {
		return refuse("%s, a %s address, which is refused unless the host's grant says \"private\": true", ap.Addr(), kind)
	}
	return nil
}

// nonPublicPrefixes are ranges that are not the public internet, beyond
// what netip's predicates cover.
var nonPublicPrefixes = []struct {
	prefix netip.Prefix
	kind   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "NAT64"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// nonPublic names the kind of a non-public address, or "" for a public one.
func nonPublic(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsPrivate():
		return "private"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, p := range nonPublicPrefixes {
		if p.prefix.Contains(ip) {
			return p.kind
		}
	}
	if ip.Is4() && ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "broadcast"
	}
	return ""
}

// do performs one guest request: checks it against the grant (asking the
// person if allowed to), sends it, follows redirects re-checking each, and
// reads the response within the grant's limits.
func (h *httpCaps) do(st *callState, req abi.HTTPRequest) (*abi.HTTPResponse, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if method != strings.ToUpper(method) || strings.ContainsAny(method, " \t\r\n") || len(method) > 16 {
		return nil, &httpError{code: abi.CapBadRequest, msg: fmt.Sprintf("method %.16q is not an upper-case HTTP method", method)}
	}
	u, err := url.Parse(req.URL)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Scheme != "https" && u.Scheme != "http" {
		return nil, &httpError{code: abi.CapBadRequest, msg: fmt.Sprintf("URL %.200q is not an absolute http or https URL", req.URL)}
	}
	if u.User != nil {
		return nil, &httpError{code: abi.CapBadRequest, msg: "URLs with user:password@ are refused; send credentials in a header"}
	}
	u.Fragment, u.RawFragment = "", ""
	if len(req.Body) > abi.MaxHTTPRequestBody {
		return nil, refuse("the request body of %d bytes is over the limit of %d", len(req.Body), abi.MaxHTTPRequestBody)
	}
	body := req.Body
	header := http.Header(req.Header).Clone()
	if header == nil {
		header = http.Header{}
	}

	var (
		ctx     context.Context
		maxBody int64
	)
	origin := u.Host
	for hop := 0; ; hop++ {
		hg, err := st.allowHTTP(method, u)
		if err != nil {
			if hop > 0 {
				return nil, fmt.Errorf("redirected to %s://%s%s: %w", u.Scheme, u.Host, u.EscapedPath(), err)
			}
			return nil, err
		}
		if hop == 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(st.ctx, hg.Timeout)
			defer cancel()
			maxBody = hg.MaxResponseBytes
		}
		maxBody = min(maxBody, hg.MaxResponseBytes)
		if u.Host != origin {
			// As net/http's client does: credentials are for the origin.
			for _, k := range []string{"Authorization", "Www-Authenticate", "Cookie", "Cookie2", "Proxy-Authorization"} {
				header.Del(k)
			}
		}
		hreq, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, &httpError{code: abi.CapBadRequest, msg: err.Error()}
		}
		hreq.Header = header
		hreq.ContentLength = int64(len(body))
		tr := h.public
		if hg.Private {
			tr = h.private
		}
		if hop == 0 && st.beforeSend != nil {
			st.beforeSend()
		}
		resp, err := tr.RoundTrip(hreq)
		if err != nil {
			return nil, transportError(ctx, st.ctx, u, hg, err)
		}
		if loc := resp.Header.Get("Location"); isRedirect(resp.StatusCode) && loc != "" {
			resp.Body.Close()
			if hop >= abi.MaxHTTPRedirects {
				return nil, refuse("more than %d redirects", abi.MaxHTTPRedirects)
			}
			next, err := u.Parse(loc)
			if err != nil {
				return nil, refuse("a redirect to an unreadable location %.200q", loc)
			}
			if next.User != nil {
				return nil, refuse("a redirect to a URL with user:password@")
			}
			next.Fragment, next.RawFragment = "", ""
			if resp.StatusCode == http.StatusSeeOther || (resp.StatusCode == 301 || resp.StatusCode == 302) && method == http.MethodPost {
				if method != http.MethodHead {
					method = http.MethodGet
				}
				body = nil
				header.Del("Content-Type")
			}
			u = next
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
		resp.Body.Close()
		if err != nil {
			return nil, transportError(ctx, st.ctx, u, hg, err)
		}
		if int64(len(data)) > maxBody {
			return nil, refuse("the response from %s is over the grant's limit of %d bytes; raise \"maxResponseBytes\" for the host (at most %d)",
				u.Host, maxBody, abi.MaxHTTPResponseBody)
		}
		return &abi.HTTPResponse{Status: resp.StatusCode, Header: resp.Header, Body: data, URL: u.String()}, nil
	}
}

func isRedirect(status int) bool {
	switch status {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// transportError classifies a failed round trip: the host's own refusal, the
// grant's timeout, or the network.
func transportError(ctx, callCtx context.Context, u *url.URL, hg grants.HostGrant, err error) error {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he
	case callCtx.Err() != nil:
		return callCtx.Err()
	case ctx.Err() != nil:
		return refuse("the request to %s took longer than the grant's %v; raise \"timeoutSeconds\" for the host", u.Host, hg.Timeout)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &httpError{code: abi.CapFailed, msg: fmt.Sprintf("the request to %s failed: %v", u.Host, err)}
}

// allowHTTP finds the grant for one request, or asks the person when the
// operator allows asking and the plugin declared the host; "once" holds for
// the rest of this call, "always" is written to the remembered file.
func (st *callState) allowHTTP(method string, u *url.URL) (grants.HostGrant, error) {
	g := st.caps.grant
	hg, err := g.CheckHTTP(method, u)
	var ge *grants.Error
	if err == nil || !errors.As(err, &ge) || ge.Code != abi.CapNotGranted {
		return hg, err
	}
	host := strings.ToLower(u.Hostname())
	if !g.CanAsk(host) || u.Scheme != "https" || u.Port() != "" && u.Port() != "443" {
		return hg, err
	}
	key := method + " " + host
	if st.allowedOnce[key] {
		return grants.Asked(host, method), nil
	}
	why := ""
	for _, n := range g.Declared().Hosts {
		if n.Host == host && n.Why != "" {
			why = fmt.Sprintf(" It says it needs this %s.", strings.TrimSuffix(n.Why, "."))
		}
	}
	switch st.askPerson(fmt.Sprintf("Allow plugin %s to send %s requests to %s?%s", g.Plugin(), method, host, why)) {
	case "once":
		if st.allowedOnce == nil {
			st.allowedOnce = map[string]bool{}
		}
		st.allowedOnce[key] = true
	case "always":
		if rerr := g.Remember(host, method); rerr != nil {
			st.log.Warn("cannot remember the answer; it holds for this request", "error", rerr)
		}
	case "deny":
		return hg, &grants.Error{Code: abi.CapNotGranted, Message: "the person asked did not allow it: " + ge.Message}
	default:
		return hg, err
	}
	st.log.Info("allowed by the person asked", "host", host, "method", method)
	return grants.Asked(host, method), nil
}

// askPerson asks, through the call's Env (the elicitation relay), the
// question whether the plugin may use something. It returns "once",
// "always", "deny", or "" when nobody could be asked (no elicitation
// capability, an error). Only the person answers an elicitation; the
// model never sees it.
func (st *callState) askPerson(question string) string {
	params, _ := json.Marshal(map[string]any{
		"message": question,
		"requestedSchema": map[string]any{
			"type": "object",
			"properties": map[string]any{
				"decision": map[string]any{
					"type":      "string",
					"title":     "Allow?",
					"enum":      []string{"once", "always", "deny"},
					"enumNames": []string{"Allow for this call", "Always allow", "Deny"},
				},
			},
			"required": []string{"decision"},
		},
	})
	resps := st.ask(kindAsk, []abi.InputRequest{{Method: abi.MethodElicit, Params: params}})
	if len(resps) != 1 || resps[0].Error != nil {
		return ""
	}
	var ans struct {
		Action  string `json:"action"`
		Content struct {
			Decision string `json:"decision"`
		} `json:"content"`
	}
	if json.Unmarshal(resps[0].Result, &ans) != nil {
		return ""
	}
	if ans.Action != "accept" {
		return "deny"
	}
	switch ans.Content.Decision {
	case "once", "always":
		return ans.Content.Decision
	}
	return "deny"
}
