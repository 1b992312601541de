package guest_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/sdk/guest"
	"github.com/wasmhost/wasmhost/sdk/guest/guesthttp"
)

// Needs and tools for the tests below, named cap_* to keep clear of the
// others.
func init() {
	guest.NeedHost("api.example.com", "to read issues")
	guest.NeedDir("/notes", true, "to keep notes")
	guest.NeedConfig("base_url", "where the tracker is")
	guest.NeedSecret("token", "to sign in")
	guest.Register(guest.Tool{Name: "cap_values"}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		base, err := c.Config("base_url")
		if err != nil {
			return "", err
		}
		tok, err := c.Secret("token")
		if err != nil {
			return "", err
		}
		return guest.Text(base + " " + fmt.Sprint(len(tok))), nil
	})
	guest.Register(guest.Tool{Name: "cap_http"}, func(c *guest.Call, _ struct{}) (guest.Text, error) {
		req, _ := http.NewRequest("POST", "https://api.example.com/issues?state=open", strings.NewReader(`{"t":1}`))
		req.Header.Set("Authorization", "Bearer x")
		resp, err := guesthttp.Client(c).Do(req)
		if errors.Is(err, guest.ErrNotGranted) {
			return guest.Text("not granted: " + err.Error()), nil
		}
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return guest.Text(fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("X-Kind"), b)), nil
	})
}

func TestNeedsAreDescribed(t *testing.T) {
	d, err := (&guest.Bridge{}).Describe()
	if err != nil {
		t.Fatal(err)
	}
	n := d.Needs
	if len(n.Hosts) != 1 || n.Hosts[0] != (abi.HostNeed{Host: "api.example.com", Why: "to read issues"}) ||
		len(n.Dirs) != 1 || !n.Dirs[0].Write || len(n.Config) != 1 || len(n.Secrets) != 1 || n.Secrets[0].Name != "token" {
		t.Errorf("needs = %+v", n)
	}
}

func TestNeedPanicsOnBadDeclarations(t *testing.T) {
	for name, f := range map[string]func(){
		"host with scheme": func() { guest.NeedHost("https://x.com", "") },
		"relative dir":     func() { guest.NeedDir("notes", false, "") },
		"twice":            func() { guest.NeedSecret("token", "") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestConfigAndSecretThroughTheBridge(t *testing.T) {
	// Allowed.
	b := &guest.Bridge{Capability: func(req abi.CapabilityRequest) abi.CapabilityResult {
		switch req.Op + " " + req.Name {
		case "config base_url":
			return abi.CapabilityResult{Value: "https://tracker"}
		case "secret token":
			return abi.CapabilityResult{Value: "12345"}
		}
		return abi.CapabilityResult{Error: &abi.CapabilityError{Code: abi.CapNotDeclared, Message: "no"}}
	}}
	res, err := b.Call("cap_values", "{}")
	if err != nil || res.IsError || res.Content[0].Text != "https://tracker 5" {
		t.Fatalf("allowed: %+v %v", res, err)
	}
	// Refused: the zero Bridge grants nothing, and the tool error says so.
	res, err = (&guest.Bridge{}).Call("cap_values", "{}")
	if err != nil || !res.IsError || !strings.Contains(res.Content[0].Text, "grants nothing") {
		t.Fatalf("refused: %+v %v", res, err)
	}
}

func TestHTTPClientThroughTheBridge(t *testing.T) {
	var got abi.HTTPRequest
	b := &guest.Bridge{Capability: func(req abi.CapabilityRequest) abi.CapabilityResult {
		if req.Op != abi.OpHTTP || req.HTTP == nil {
			t.Errorf("request %+v", req)
			return abi.CapabilityResult{}
		}
		got = *req.HTTP
		return abi.CapabilityResult{HTTP: &abi.HTTPResponse{Status: 201, Header: map[string][]string{"X-Kind": {"issue"}}, Body: []byte("created")}}
	}}
	res, err := b.Call("cap_http", "{}")
	if err != nil || res.IsError || res.Content[0].Text != "201 issue created" {
		t.Fatalf("allowed: %+v %v", res, err)
	}
	if got.Method != "POST" || got.URL != "https://api.example.com/issues?state=open" || string(got.Body) != `{"t":1}` ||
		got.Header["Authorization"][0] != "Bearer x" {
		t.Errorf("the host got %+v", got)
	}
	// Refused: errors.Is(err, guest.ErrNotGranted), with the host's message.
	res, err = (&guest.Bridge{}).Call("cap_http", "{}")
	if err != nil || res.IsError || !strings.HasPrefix(res.Content[0].Text, "not granted: ") || !strings.Contains(res.Content[0].Text, "grants nothing") {
		t.Fatalf("refused: %+v %v", res, err)
	}
}
