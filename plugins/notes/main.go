// Command notes keeps text notes in a directory the operator grants: list,
// read, write and delete, where delete really deletes, after the user
// confirms. It shows a plugin that works on files: it declares the guest
// path it needs, and the operator mounts a directory there (docs/security.md):
//
//	{"plugins": {"notes": {"dirs": [{"path": "/notes", "hostPath": "/home/me/notes", "write": true}]}}}
//
// The plugin uses the directory with package os as any Go program would;
// wasmhost confines it there (no .., no symlinks leading out).
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/wasmhost/wasmhost/sdk/guest"
)

// dir is where the notes are, as the plugin sees it.
const dir = "/notes"

// NoteIn names a note.
type NoteIn struct {
	// The note's name, such as "shopping" (letters, digits, - and _; stored as name.md).
	Name string `json:"name"`
}

// WriteIn is write_note's input.
type WriteIn struct {
	// The note's name, such as "shopping" (letters, digits, - and _; stored as name.md).
	Name string `json:"name"`
	// The note's text (Markdown). It replaces what the note held.
	Text string `json:"text"`
}

// NoteList is list_notes' output.
type NoteList struct {
	Notes []string `json:"notes"`
}

// Confirmation is the form delete_note shows the user.
type Confirmation struct {
	// Tick to delete the note for good.
	Confirm bool `json:"confirm"`
}

// file checks the name and returns the note's path. Names are a small
// alphabet so that no name can mean a path: the host confines the plugin to
// its directory anyway, this keeps notes among themselves.
func file(c *guest.Call, name string, write bool) (string, error) {
	if _, writable, err := c.Dir(dir); err != nil {
		return "", err // not granted: the message says how to grant it
	} else if write && !writable {
		return "", fmt.Errorf("%s is mounted read-only; grant it with \"write\": true to change notes", dir)
	}
	if name == "" || len(name) > 64 || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return "", fmt.Errorf("note name %q: use 1 to 64 letters, digits, - and _", name)
	}
	return path.Join(dir, name+".md"), nil
}

func listNotes(c *guest.Call, _ struct{}) (NoteList, error) {
	if _, _, err := c.Dir(dir); err != nil {
		return NoteList{}, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return NoteList{}, err
	}
	out := NoteList{Notes: []string{}}
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".md"); ok && e.Type().IsRegular() {
			out.Notes = append(out.Notes, name)
		}
	}
	sort.Strings(out.Notes)
	return out, nil
}

func readNote(c *guest.Call, in NoteIn) (guest.Text, error) {
	p, err := file(c, in.Name, false)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("there is no note %q (list_notes shows them)", in.Name)
	}
	return guest.Text(b), err
}

func writeNote(c *guest.Call, in WriteIn) (guest.Text, error) {
	p, err := file(c, in.Name, true)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(p, []byte(in.Text), 0o644); err != nil {
		return "", err
	}
	return guest.Text(fmt.Sprintf("Saved %s (%d bytes)", in.Name, len(in.Text))), nil
}

// deleteNote deletes for real, and only after the user said yes: a client
// that cannot ask its user gets no deletion (no answer is not a yes).
func deleteNote(c *guest.Call, in NoteIn) (guest.Text, error) {
	p, err := file(c, in.Name, true)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("there is no note %q (list_notes shows them)", in.Name)
	}
	answer, err := guest.Elicit[Confirmation](c, fmt.Sprintf("Delete the note %q for good?", in.Name))
	if errors.Is(err, guest.ErrUnsupported) {
		return guest.Text("Kept " + in.Name + ": this client cannot ask you to confirm, and a note is only deleted after a yes"), nil
	}
	if err != nil {
		return "", fmt.Errorf("asking for confirmation: %w", err)
	}
	if !answer.Accepted() || !answer.Content.Confirm {
		return guest.Text("Kept " + in.Name), nil
	}
	if err := os.Remove(p); err != nil {
		return "", err
	}
	return guest.Text("Deleted " + in.Name), nil
}

func init() {
	guest.NeedDir(dir, true, "where the notes are kept")
	guest.Register(guest.Tool{Name: "list_notes", Title: "List notes", Description: "List the notes.",
		Annotations: &guest.Annotations{ReadOnlyHint: true, IdempotentHint: true}}, listNotes)
	guest.Register(guest.Tool{Name: "read_note", Title: "Read a note", Description: "Read one note.",
		Annotations: &guest.Annotations{ReadOnlyHint: true, IdempotentHint: true}}, readNote)
	guest.Register(guest.Tool{Name: "write_note", Title: "Write a note", Description: "Create or replace a note."}, writeNote)
	destructive := true
	guest.Register(guest.Tool{Name: "delete_note", Title: "Delete a note",
		Description: "Delete a note for good, after the user confirms.",
		Annotations: &guest.Annotations{DestructiveHint: &destructive},
		TaskSupport: guest.TaskOptional}, deleteNote)
}

func main() {}
