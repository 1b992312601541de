// Command releasenotes is the example to copy when writing a wasmhost
// plugin. Its one tool, release_notes, drafts release notes from commit
// subjects and shows every part of the SDK a real tool needs:
//
//   - typed input with optional fields and an enum, documented by comments
//     (the comments become the schema's descriptions);
//   - structured output: the tool's outputSchema is derived from
//     ReleaseNotes, and clients receive the value as structuredContent;
//   - logging and progress reports;
//   - asking the user a question (an elicitation) only when it has to, and
//     carrying on sensibly when the client cannot ask;
//   - tool errors for bad input, which the model reads and can correct.
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o releasenotes.wasm .
// Test:  go test . (runs the tool on the build machine through guest.Bridge)
package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

// ReleaseNotesIn is the tool's input.
type ReleaseNotesIn struct {
	// The version being released, such as v1.4.0.
	Version string `json:"version"`
	// Commit subjects since the last release, newest first. Conventional
	// prefixes (feat:, fix:, docs:, ...) decide the section.
	Commits []string `json:"commits"`
	// Who will read the notes. When left out, the user is asked.
	Audience *string `json:"audience,omitempty" jsonschema:"enum=users|developers"`
}

// AudienceChoice is the form shown to the user when no audience was given.
// Elicitation forms must be flat: strings, numbers, booleans and enums.
type AudienceChoice struct {
	// Users see features and fixes; developers see every change.
	Audience string `json:"audience" jsonschema:"enum=users|developers"`
}

// ReleaseNotes is the tool's structured output.
type ReleaseNotes struct {
	Version  string    `json:"version"`
	Audience string    `json:"audience"`
	Sections []Section `json:"sections"`
	// Commits left out because the audience would not care.
	Skipped int `json:"skipped"`
	// The notes as Markdown, ready to paste.
	Markdown string `json:"markdown"`
}

// Section is one heading of the notes and its entries.
type Section struct {
	Title   string   `json:"title"`
	Entries []string `json:"entries"`
}

// sections maps conventional-commit types to headings, in display order.
// forUsers marks the sections users care about.
var sections = []struct {
	prefix, title string
	forUsers      bool
}{
	{"feat", "New features", true},
	{"fix", "Bug fixes", true},
	{"perf", "Performance", true},
	{"docs", "Documentation", false},
	{"", "Other changes", false}, // everything else
}

func releaseNotes(c *guest.Call, in ReleaseNotesIn) (ReleaseNotes, error) {
	// Returned errors become tool errors: the model sees the message.
	if in.Version == "" {
		return ReleaseNotes{}, errors.New("version must not be empty")
	}
	if len(in.Commits) == 0 {
		return ReleaseNotes{}, errors.New("commits must list at least one commit subject")
	}

	audience, err := chooseAudience(c, in)
	if err != nil {
		return ReleaseNotes{}, err
	}
	c.Logf(guest.LogInfo, "drafting %s notes for %s from %d commits", audience, in.Version, len(in.Commits))

	// Sections is never null: the output schema promises an array.
	notes := ReleaseNotes{Version: in.Version, Audience: audience, Sections: []Section{}}
	entries := make([][]string, len(sections))
	for i, subject := range in.Commits {
		s, text := classify(subject)
		if audience == "users" && !sections[s].forUsers {
			notes.Skipped++
		} else {
			entries[s] = append(entries[s], text)
		}
		// Progress is cheap; report it as often as it means something.
		c.Progress(float64(i+1), float64(len(in.Commits)), "sorting commits")
	}

	var md strings.Builder
	fmt.Fprintf(&md, "# %s\n", in.Version)
	for s, list := range entries {
		if len(list) == 0 {
			continue
		}
		notes.Sections = append(notes.Sections, Section{Title: sections[s].title, Entries: list})
		fmt.Fprintf(&md, "\n## %s\n\n", sections[s].title)
		for _, e := range list {
			fmt.Fprintf(&md, "- %s\n", e)
		}
	}
	notes.Markdown = md.String()
	return notes, nil
}

// chooseAudience returns the audience from the input, or asks the user.
func chooseAudience(c *guest.Call, in ReleaseNotesIn) (string, error) {
	if in.Audience != nil {
		if *in.Audience != "users" && *in.Audience != "developers" {
			return "", fmt.Errorf("audience %q: want users or developers", *in.Audience)
		}
		return *in.Audience, nil
	}
	answer, err := guest.Elicit[AudienceChoice](c, "Who will read the release notes for "+in.Version+"?")
	switch {
	case errors.Is(err, guest.ErrUnsupported):
		// Not every client can ask its user. Pick the safe default and say so.
		c.Log(guest.LogNotice, "the client cannot ask the user; writing notes for users")
		return "users", nil
	case err != nil:
		return "", fmt.Errorf("asking for the audience: %w", err)
	case !answer.Accepted():
		return "users", nil
	}
	return answer.Content.Audience, nil
}

// classify finds the section of a commit subject and strips its prefix:
// "fix(parser): handle tabs" is a bug fix, "handle tabs (parser)".
func classify(subject string) (section int, text string) {
	head, rest, ok := strings.Cut(subject, ":")
	if !ok {
		return len(sections) - 1, strings.TrimSpace(subject)
	}
	typ, scope, _ := strings.Cut(strings.TrimSuffix(head, "!"), "(")
	text = strings.TrimSpace(rest)
	if scope = strings.TrimSuffix(scope, ")"); scope != "" {
		text += " (" + scope + ")"
	}
	for i, s := range sections {
		if s.prefix == strings.ToLower(strings.TrimSpace(typ)) || s.prefix == "" {
			return i, text
		}
	}
	return len(sections) - 1, text
}

func init() {
	guest.Register(guest.Tool{
		Name:        "release_notes",
		Title:       "Draft release notes",
		Description: "Draft release notes in Markdown from a list of commit subjects, grouped by conventional-commit type.",
		Annotations: &guest.Annotations{ReadOnlyHint: true, IdempotentHint: true},
		// Asking the user may take a while: let the client run it as a task.
		TaskSupport: guest.TaskOptional,
	}, releaseNotes)
}

func main() {}
