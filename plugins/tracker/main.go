// Command tracker lists and files issues in a GitHub-style issue tracker
// over HTTP, with an API token. It shows a plugin that reaches the network:
// it declares the hosts, the config key and the secret it needs, and the
// operator grants them in the grants file (docs/security.md):
//
//	{"plugins": {"tracker": {
//	    "hosts": [{"host": "api.github.com", "methods": ["GET", "POST"], "pathPrefix": "/repos/"}],
//	    "secrets": {"token": {"env": "GITHUB_TOKEN"}}}}}
//
// Without grants it still loads; its calls fail with the missing grant and
// how to add it.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/wasmhost/wasmhost/sdk/guest"
	"github.com/wasmhost/wasmhost/sdk/guest/guesthttp"
)

// defaultBase is the API root when the operator sets no base_url.
const defaultBase = "https://api.github.com"

// ListIn is list_issues' input.
type ListIn struct {
	// The repository, as owner/name.
	Repo string `json:"repo"`
	// Which issues: open, closed or all.
	State string `json:"state,omitempty" jsonschema:"enum=open|closed|all,default=open"`
}

// Issue is one issue as the tool returns it.
type Issue struct {
	Number int    `json:"number"`
	Title  string `json:"title"`
	State  string `json:"state"`
	URL    string `json:"url,omitempty"`
}

// Issues is list_issues' output.
type Issues struct {
	Repo   string  `json:"repo"`
	Issues []Issue `json:"issues"`
}

// CreateIn is create_issue's input.
type CreateIn struct {
	// The repository, as owner/name.
	Repo string `json:"repo"`
	// The issue's title.
	Title string `json:"title"`
	// The issue's text (Markdown).
	Body string `json:"body,omitempty"`
}

var repoName = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)

// tracker is what a call needs to talk to the tracker.
type tracker struct {
	c     *guest.Call
	base  string
	token string
}

// open reads the configuration: base_url defaults to GitHub, and the token
// is optional for reading (required to create, by the tracker itself).
func open(c *guest.Call, repo string) (*tracker, error) {
	if !repoName.MatchString(repo) || strings.Contains(repo, "..") {
		return nil, fmt.Errorf("repo %q: want owner/name", repo)
	}
	t := &tracker{c: c, base: defaultBase}
	if base, err := c.Config("base_url"); err == nil {
		t.base = strings.TrimSuffix(base, "/")
	} else if !errors.Is(err, guest.ErrNotGranted) {
		return nil, err
	}
	tok, err := c.Secret("token")
	if err != nil && !errors.Is(err, guest.ErrNotGranted) {
		return nil, err
	}
	t.token = tok
	return t, nil
}

// do sends one request and decodes the JSON answer into out.
func (t *tracker) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, t.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := guesthttp.Client(t.c).Do(req)
	if err != nil {
		return err // a refused grant says how to add it: pass it on as is
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Message string }
		json.Unmarshal(data, &e)
		return fmt.Errorf("the tracker answered %s %s: %d %s", method, path, resp.StatusCode, orText(e.Message, http.StatusText(resp.StatusCode)))
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the tracker's answer to %s %s is not the JSON expected: %v", method, path, err)
	}
	return nil
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

type apiIssue struct {
	Number  int    `json:"number"`
	Title   string `json:"title"`
	State   string `json:"state"`
	HTMLURL string `json:"html_url"`
}

func (a apiIssue) issue() Issue {
	return Issue{Number: a.Number, Title: a.Title, State: a.State, URL: a.HTMLURL}
}

func listIssues(c *guest.Call, in ListIn) (Issues, error) {
	t, err := open(c, in.Repo)
	if err != nil {
		return Issues{}, err
	}
	state := orText(in.State, "open")
	if state != "open" && state != "closed" && state != "all" {
		return Issues{}, fmt.Errorf("state %q: want open, closed or all", state)
	}
	var list []apiIssue
	if err := t.do("GET", "/repos/"+in.Repo+"/issues?state="+state, nil, &list); err != nil {
		return Issues{}, err
	}
	out := Issues{Repo: in.Repo, Issues: []Issue{}}
	for _, a := range list {
		out.Issues = append(out.Issues, a.issue())
	}
	return out, nil
}

func createIssue(c *guest.Call, in CreateIn) (Issue, error) {
	t, err := open(c, in.Repo)
	if err != nil {
		return Issue{}, err
	}
	if strings.TrimSpace(in.Title) == "" {
		return Issue{}, errors.New("title must not be empty")
	}
	var a apiIssue
	if err := t.do("POST", "/repos/"+in.Repo+"/issues", map[string]string{"title": in.Title, "body": in.Body}, &a); err != nil {
		return Issue{}, err
	}
	return a.issue(), nil
}

func init() {
	guest.NeedHost("api.github.com", "to read and file issues on GitHub")
	guest.NeedHost("127.0.0.1", "to reach a tracker on this machine (development and tests)")
	guest.NeedConfig("base_url", "the tracker's API root, when it is not https://api.github.com")
	guest.NeedSecret("token", "the API token, sent as a Bearer token")
	guest.Register(guest.Tool{
		Name:        "list_issues",
		Title:       "List issues",
		Description: "List the issues of a repository in the issue tracker.",
		Annotations: &guest.Annotations{ReadOnlyHint: true, IdempotentHint: true},
		TaskSupport: guest.TaskOptional,
	}, listIssues)
	guest.Register(guest.Tool{
		Name:        "create_issue",
		Title:       "Create an issue",
		Description: "File a new issue in a repository of the issue tracker.",
		TaskSupport: guest.TaskOptional,
	}, createIssue)
}

func main() {}
