package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/wasmhost/wasmhost/grants"
)

// needView is one declared need beside what is granted of it, for inspect.
type needView struct {
	Kind     string `json:"kind"` // host, dir, config, secret
	Name     string `json:"name"`
	Why      string `json:"why,omitempty"`
	Declared string `json:"declared,omitempty"` // for a dir: read-only or read-write
	Granted  string `json:"granted"`            // what the grant allows, or "no"
}

// needsView lists what a plugin declared and what g grants of it. A
// secret's value is never shown.
func needsView(g *grants.Grant) []needView {
	n := g.Declared()
	var out []needView
	for _, h := range n.Hosts {
		var allowed []string
		for _, hg := range g.Hosts() {
			if hg.Host == h.Host {
				allowed = append(allowed, describeHostGrant(hg))
			}
		}
		out = append(out, needView{Kind: "host", Name: h.Host, Why: h.Why, Granted: orNo(strings.Join(allowed, "; "))})
	}
	for _, d := range n.Dirs {
		v := needView{Kind: "dir", Name: d.Path, Why: d.Why, Declared: mode(d.Write), Granted: "no"}
		if dg, err := g.Dir(d.Path); err == nil {
			v.Granted = dg.HostPath + " " + mode(dg.Write)
		}
		out = append(out, v)
	}
	for _, c := range n.Config {
		out = append(out, needView{Kind: "config", Name: c.Key, Why: c.Why, Granted: yesNo(slices.Contains(g.ConfigKeys(), c.Key))})
	}
	for _, s := range n.Secrets {
		out = append(out, needView{Kind: "secret", Name: s.Name, Why: s.Why, Granted: yesNo(slices.Contains(g.SecretNames(), s.Name))})
	}
	return out
}

func describeHostGrant(h grants.HostGrant) string {
	scheme := "https"
	if h.PlainHTTP {
		scheme = "https/http"
	}
	s := fmt.Sprintf("%s %s", strings.Join(h.Methods, ","), scheme)
	if h.Port != 0 {
		s += fmt.Sprintf(" port %d", h.Port)
	}
	if h.PathPrefix != "" {
		s += " under " + h.PathPrefix
	}
	if h.Private {
		s += ", private addresses allowed"
	}
	return s
}

func mode(write bool) string {
	if write {
		return "read-write"
	}
	return "read-only"
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

func orNo(s string) string {
	if s == "" {
		return "no"
	}
	return s
}

// printNeeds writes the declared-versus-granted table of inspect.
func printNeeds(out io.Writer, g *grants.Grant, file string) {
	views := needsView(g)
	if len(views) == 0 {
		fmt.Fprintf(out, "needs:       nothing (no network, files, config or secrets)\n\n")
		return
	}
	from := "no grants file: nothing is granted (pass --grants FILE)"
	if file != "" {
		from = "granted by " + file
	}
	fmt.Fprintf(out, "needs (%s):\n", from)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  KIND\tNAME\tDECLARED WHY\tGRANTED")
	for _, v := range views {
		name := v.Name
		if v.Declared != "" {
			name += " (" + v.Declared + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", v.Kind, name, orDefault(v.Why, "-"), v.Granted)
	}
	tw.Flush()
	fmt.Fprintln(out)
}
