package main

// Plugin tests run on the build machine (go test .), with guest.Bridge
// standing in for wasmhost: its Capability performs the plugin's HTTP
// requests against a loopback test tracker, as a granted host would, and
// refuses as wasmhost does without grants. (The full path, through the
// host's grants, is tested in cmd/wasmhost and e2e/distributed.)

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/sdk/guest"
)

// granted is a Bridge granting base_url, token and HTTP to srv.
func granted(t *testing.T, srv *httptest.Server, token string) *guest.Bridge {
	return &guest.Bridge{Capability: func(req abi.CapabilityRequest) abi.CapabilityResult {
		switch req.Op {
		case abi.OpConfig:
			return abi.CapabilityResult{Value: srv.URL}
		case abi.OpSecret:
			return abi.CapabilityResult{Value: token}
		case abi.OpHTTP:
			r, err := http.NewRequest(req.HTTP.Method, req.HTTP.URL, bytes.NewReader(req.HTTP.Body))
			if err != nil {
				t.Fatal(err)
			}
			r.Header = req.HTTP.Header
			resp, err := srv.Client().Do(r)
			if err != nil {
				return abi.CapabilityResult{Error: &abi.CapabilityError{Code: abi.CapFailed, Message: err.Error()}}
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return abi.CapabilityResult{HTTP: &abi.HTTPResponse{Status: resp.StatusCode, Header: resp.Header, Body: body, URL: req.HTTP.URL}}
		}
		return abi.CapabilityResult{Error: &abi.CapabilityError{Code: abi.CapBadRequest, Message: "unknown op"}}
	}}
}

func TestTracker(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sekrit" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Bad credentials"}`)
			return
		}
		switch r.Method + " " + r.URL.Path {
		case "GET /repos/acme/rockets/issues":
			fmt.Fprintf(w, `[{"number":1,"title":"state=%s","state":"open"}]`, r.URL.Query().Get("state"))
		case "POST /repos/acme/rockets/issues":
			var in struct{ Title, Body string }
			json.NewDecoder(r.Body).Decode(&in)
			fmt.Fprintf(w, `{"number":2,"title":%q,"state":"open"}`, in.Title+"|"+in.Body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name, tool, args string
		bridge           *guest.Bridge
		want             string // in the text of the result
		isError          bool
	}{
		{"list", "list_issues", `{"repo":"acme/rockets","state":"closed"}`, granted(t, srv, "sekrit"), `"title":"state=closed"`, false},
		{"create", "create_issue", `{"repo":"acme/rockets","title":"T","body":"B"}`, granted(t, srv, "sekrit"), `"title":"T|B"`, false},
		{"wrong token", "list_issues", `{"repo":"acme/rockets"}`, granted(t, srv, "nope"), "401 Bad credentials", true},
		{"unknown repo", "list_issues", `{"repo":"acme/none"}`, granted(t, srv, "sekrit"), "404", true},
		{"bad repo", "list_issues", `{"repo":"../etc"}`, granted(t, srv, "sekrit"), "want owner/name", true},
		{"empty title", "create_issue", `{"repo":"acme/rockets","title":" "}`, granted(t, srv, "sekrit"), "title must not be empty", true},
		{"nothing granted", "list_issues", `{"repo":"acme/rockets"}`, &guest.Bridge{}, "grants nothing", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.bridge.Call(tc.tool, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			text := res.Content[0].Text
			if res.IsError != tc.isError || !strings.Contains(text, tc.want) {
				t.Errorf("got isError=%v %q, want isError=%v containing %q", res.IsError, text, tc.isError, tc.want)
			}
		})
	}
}
