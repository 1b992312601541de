//go:build wasip1

// Command capable is the test guest for capability grants, written with the
// SDK as a plugin author would: HTTP through guesthttp, config, secrets and
// files on declared directories.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/wasmhost/wasmhost/abi"
	"github.com/wasmhost/wasmhost/sdk/guest"
	"github.com/wasmhost/wasmhost/sdk/guest/guesthttp"
)

type FetchIn struct {
	Method string            `json:"method,omitempty"`
	URL    string            `json:"url"`
	Body   string            `json:"body,omitempty"`
	Header map[string]string `json:"header,omitempty"`
}

type FetchOut struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
	// Code is the CapabilityError's code when refused.
	Code string `json:"code,omitempty"`
	Err  string `json:"err,omitempty"`
}

func fetch(c *guest.Call, in FetchIn) (FetchOut, error) {
	method := in.Method
	if method == "" {
		method = "GET"
	}
	req, err := newRequest(method, in.URL, in.Body)
	if err != nil {
		return FetchOut{}, err
	}
	for k, v := range in.Header {
		req.Header.Set(k, v)
	}
	resp, err := guesthttp.Client(c).Do(req)
	if err != nil {
		var ce *guest.CapabilityError
		if errors.As(err, &ce) {
			return FetchOut{Code: ce.Code, Err: err.Error()}, nil
		}
		return FetchOut{Err: err.Error()}, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return FetchOut{Status: resp.StatusCode, Body: string(b)}, nil
}

type KeyIn struct {
	Key string `json:"key"`
}

type ValueOut struct {
	Value string `json:"value,omitempty"`
	Code  string `json:"code,omitempty"`
	Err   string `json:"err,omitempty"`
}

func valueOut(v string, err error) (ValueOut, error) {
	var ce *guest.CapabilityError
	if errors.As(err, &ce) {
		return ValueOut{Code: ce.Code, Err: err.Error()}, nil
	}
	if err != nil {
		return ValueOut{Err: err.Error()}, nil
	}
	return ValueOut{Value: v}, nil
}

// leak does everything a careless plugin could do with its secret.
func leak(c *guest.Call, in KeyIn) (guest.Text, error) {
	s, err := c.Secret(in.Key)
	if err != nil {
		return "", err
	}
	c.Log(guest.LogInfo, "the token is "+s)
	c.Progress(1, 2, "using "+s)
	fmt.Println("stdout " + s)
	fmt.Fprintln(os.Stderr, "stderr "+s)
	return guest.Text("here it is: " + s), nil
}

type FileIn struct {
	Op   string `json:"op"` // read, write, delete, list, symlink, dir, dirwrite
	Path string `json:"path"`
	Data string `json:"data,omitempty"`
}

func files(c *guest.Call, in FileIn) (ValueOut, error) {
	var (
		v   string
		err error
	)
	switch in.Op {
	case "read":
		var b []byte
		b, err = os.ReadFile(in.Path)
		v = string(b)
	case "write":
		err = os.WriteFile(in.Path, []byte(in.Data), 0o644)
	case "delete":
		err = os.Remove(in.Path)
	case "list":
		var es []os.DirEntry
		es, err = os.ReadDir(in.Path)
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		v = strings.Join(names, ",")
	case "symlink":
		err = os.Symlink(in.Data, in.Path)
	case "dir":
		var rw bool
		_, rw, err = c.Dir(in.Path)
		v = fmt.Sprint(rw)
	case "dirwrite": // as a plugin should: Dir first (a person may be asked), then the file
		if _, _, err = c.Dir(in.Path); err == nil {
			err = os.WriteFile(path.Join(in.Path, "asked.txt"), []byte(in.Data), 0o644)
		}
	default:
		return ValueOut{}, fmt.Errorf("unknown op %q", in.Op)
	}
	if err != nil {
		return valueOut("", err)
	}
	return ValueOut{Value: v}, nil
}

type ManyIn struct {
	URL string `json:"url"`
	N   int    `json:"n"`
	// Raw skips net/http: one Call.Capability per request.
	Raw bool `json:"raw,omitempty"`
}

type ManyOut struct {
	// Nanos is each request's duration, as the guest saw it.
	Nanos []int64 `json:"nanos"`
}

// fetchMany makes n GET requests one after the other, timing each, for the
// benchmark of the HTTP import.
func fetchMany(c *guest.Call, in ManyIn) (ManyOut, error) {
	client := guesthttp.Client(c)
	out := ManyOut{Nanos: make([]int64, 0, in.N)}
	for range in.N {
		start := time.Now()
		if in.Raw {
			if _, err := c.Capability(abi.CapabilityRequest{Op: abi.OpHTTP, HTTP: &abi.HTTPRequest{Method: "GET", URL: in.URL}}); err != nil {
				return ManyOut{}, err
			}
			out.Nanos = append(out.Nanos, time.Since(start).Nanoseconds())
			continue
		}
		resp, err := client.Get(in.URL)
		if err != nil {
			return ManyOut{}, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out.Nanos = append(out.Nanos, time.Since(start).Nanoseconds())
	}
	return out, nil
}

func init() {
	guest.Register(guest.Tool{Name: "fetch_many"}, fetchMany)
	guest.NeedHost("127.0.0.1", "test servers")
	guest.NeedHost("localhost", "the same, by name")
	guest.NeedDir("/data", true, "notes")
	guest.NeedDir("/ro", false, "reference")
	guest.NeedConfig("greeting", "how to greet")
	guest.NeedSecret("token", "to authenticate")
	guest.Register(guest.Tool{Name: "fetch", Description: "Fetch a URL."}, fetch)
	guest.Register(guest.Tool{Name: "config"}, func(c *guest.Call, in KeyIn) (ValueOut, error) { return valueOut(c.Config(in.Key)) })
	guest.Register(guest.Tool{Name: "secret_len"}, func(c *guest.Call, in KeyIn) (ValueOut, error) {
		s, err := c.Secret(in.Key)
		return valueOut(fmt.Sprint(len(s)), err)
	})
	guest.Register(guest.Tool{Name: "leak"}, leak)
	guest.Register(guest.Tool{Name: "leak_panic"}, func(c *guest.Call, in KeyIn) (guest.Text, error) {
		s, _ := c.Secret(in.Key)
		panic("cannot go on with " + s)
	})
	guest.Register(guest.Tool{Name: "files"}, files)
}

func main() {}
