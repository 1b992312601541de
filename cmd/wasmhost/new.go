package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

const modulePath = "github.com/wasmhost/wasmhost"

var toolName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

func newCommand() *cobra.Command {
	var (
		dir  string
		sdk  string
		kind string
	)
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create a plugin from a template that builds and runs",
		Long: `Create DIR/NAME/main.go: one tool called NAME with a typed input, an output,
a question for the user and a log line, ready to edit.

--template http makes a tool that reads from a web API instead: it declares the
host it needs, and a grants.example.json beside it grants that host (pass it to
serve, call or inspect with --grants).

Inside a wasmhost checkout the plugin builds as part of it. Elsewhere pass
--sdk with the path of a wasmhost checkout; a go.mod that points at it is
written too.`,
		Example: `  wasmhost new word_count
  wasmhost call word_count --args '{"text":"to be or not to be"}'
  wasmhost new my_tool --dir ~/tools --sdk ~/src/wasmhost
  wasmhost new repo_info --template http`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !toolName.MatchString(name) {
				return fmt.Errorf("plugin name %q: use lower-case letters, digits and _ (a valid Go package and tool name), starting with a letter", name)
			}
			target := filepath.Join(dir, name)
			if _, err := os.Stat(target); err == nil {
				return fmt.Errorf("%s already exists: pick another name or remove it", target)
			}
			inModule, err := insideModule(dir)
			if err != nil {
				return err
			}
			if !inModule && sdk == "" {
				return fmt.Errorf("%s is not inside a wasmhost checkout: pass --sdk PATH_TO_WASMHOST_CHECKOUT so the plugin can use the guest SDK", dir)
			}
			files := map[string]string{"main.go": pluginTemplate}
			try := `'{"text":"hello world"}'`
			switch kind {
			case "basic":
			case "http":
				files = map[string]string{"main.go": httpPluginTemplate, "grants.example.json": httpGrantsTemplate}
				try = `'{"repo":"golang/go"}' --grants ` + filepath.Join(target, "grants.example.json")
			default:
				return fmt.Errorf("--template %q: want basic or http", kind)
			}
			if !inModule {
				abs, err := filepath.Abs(sdk)
				if err != nil {
					return err
				}
				goLine, err := goDirective(filepath.Join(abs, "go.mod"))
				if err != nil {
					return fmt.Errorf("--sdk %s: %w (is it a wasmhost checkout?)", sdk, err)
				}
				files["go.mod"] = fmt.Sprintf("module example.com/%s\n\n%s\n\nrequire %s v0.0.0\n\nreplace %s => %s\n", name, goLine, modulePath, modulePath, abs)
			}
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			for file, text := range files {
				var buf bytes.Buffer
				if err := template.Must(template.New(file).Parse(text)).Execute(&buf, map[string]string{"Name": name, "Title": title(name)}); err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(target, file), buf.Bytes(), 0o644); err != nil {
					return err
				}
			}
			if !inModule {
				// go.sum must list what the SDK's module requires.
				tidy := exec.CommandContext(cmd.Context(), "go", "mod", "tidy")
				tidy.Dir, tidy.Stdout, tidy.Stderr = target, cmd.ErrOrStderr(), cmd.ErrOrStderr()
				if err := tidy.Run(); err != nil {
					return fmt.Errorf("created %s, but `go mod tidy` there failed (%w): run it yourself once the Go module proxy is reachable", target, err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s\ntry it:  wasmhost call %s --plugins %s --args %s\n", target, name, dir, try)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "plugins", "directory to create the plugin in")
	cmd.Flags().StringVar(&sdk, "sdk", "", "path of a wasmhost checkout, when creating outside one")
	cmd.Flags().StringVar(&kind, "template", "basic", "basic (a tool that computes and asks), or http (a tool that reads a web API under a grant)")
	return cmd
}

// insideModule reports whether dir is inside the wasmhost module itself.
func insideModule(dir string) (bool, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, err
	}
	for d := abs; ; d = filepath.Dir(d) {
		data, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil {
			return strings.Contains(string(data), "module "+modulePath+"\n"), nil
		}
		if filepath.Dir(d) == d {
			return false, nil
		}
	}
}

// goDirective returns the "go 1.x.y" line of a go.mod: a plugin module
// must not declare an older Go than the SDK it uses.
func goDirective(goMod string) (string, error) {
	data, err := os.ReadFile(goMod)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "go ") {
			return strings.TrimSpace(line), nil
		}
	}
	return "", fmt.Errorf("%s has no go directive", goMod)
}

func title(name string) string {
	words := strings.Split(name, "_")
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// pluginTemplate is the plugin `new` writes: small, but showing typed
// input and output, a log line and where questions to the user go.
const pluginTemplate = `// Command {{.Name}} is a wasmhost tool plugin. Build and try it with
//
//	wasmhost call {{.Name}} --args '{"text":"hello world"}'
package main

import (
	"strings"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

// Input is what the client sends. Field comments become descriptions in
// the tool's input schema; fields without omitempty are required.
type Input struct {
	// The text to look at.
	Text string ` + "`json:\"text\"`" + `
}

// Output is the tool's structured result; its schema is the outputSchema.
type Output struct {
	// Number of words in the text.
	Words int ` + "`json:\"words\"`" + `
}

func run(c *guest.Call, in Input) (Output, error) {
	words := len(strings.Fields(in.Text))
	c.Logf(guest.LogInfo, "counted %d words", words)
	// To ask the user something, see guest.Elicit.
	return Output{Words: words}, nil
}

func init() {
	guest.Register(guest.Tool{
		Name:        "{{.Name}}",
		Title:       "{{.Title}}",
		Description: "Count the words in a text.",
		TaskSupport: guest.TaskOptional,
	}, run)
}

// main is never called: a plugin is a reactor, driven by the host.
func main() {}
`

// httpPluginTemplate is the plugin `new --template http` writes: a tool
// that reads a web API through a granted host.
const httpPluginTemplate = `// Command {{.Name}} is a wasmhost tool plugin that reads a web API. It
// declares the host it needs; the operator grants it (see
// grants.example.json beside this file and docs/security.md):
//
//	wasmhost call {{.Name}} --args '{"repo":"golang/go"}' --grants grants.example.json
package main

import (
	"encoding/json"
	"fmt"

	"github.com/wasmhost/wasmhost/sdk/guest"
	"github.com/wasmhost/wasmhost/sdk/guest/guesthttp"
)

// Input is what the client sends.
type Input struct {
	// The repository, as owner/name.
	Repo string ` + "`json:\"repo\"`" + `
}

// Output is the tool's structured result.
type Output struct {
	// What the repository says about itself.
	Description string ` + "`json:\"description\"`" + `
	// How many people starred it.
	Stars int ` + "`json:\"stars\"`" + `
}

func run(c *guest.Call, in Input) (Output, error) {
	// An ordinary *http.Client: wasmhost makes the request, if granted.
	resp, err := guesthttp.Client(c).Get("https://api.github.com/repos/" + in.Repo)
	if err != nil {
		return Output{}, err // when not granted, the message says how to grant it
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return Output{}, fmt.Errorf("GitHub answered %s", resp.Status)
	}
	var repo struct {
		Description string ` + "`json:\"description\"`" + `
		Stars       int    ` + "`json:\"stargazers_count\"`" + `
	}
	if err := json.NewDecoder(resp.Body).Decode(&repo); err != nil {
		return Output{}, err
	}
	return Output{Description: repo.Description, Stars: repo.Stars}, nil
}

func init() {
	// Declared needs show in the tool's description and in wasmhost inspect;
	// nothing beyond them can be granted.
	guest.NeedHost("api.github.com", "to read a repository's description")
	guest.Register(guest.Tool{
		Name:        "{{.Name}}",
		Title:       "{{.Title}}",
		Description: "Describe a GitHub repository.",
		Annotations: &guest.Annotations{ReadOnlyHint: true},
	}, run)
}

// main is never called: a plugin is a reactor, driven by the host.
func main() {}
`

// httpGrantsTemplate grants the http template's plugin its host.
const httpGrantsTemplate = `{
  "plugins": {
    "{{.Name}}": {
      "hosts": [{"host": "api.github.com", "methods": ["GET"], "pathPrefix": "/repos/"}]
    }
  }
}
`
