package gobuild

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/wasmhost/wasmhost/abi"
)

// Keying a build asks `go list -deps`, and the key needs `go version`: the
// go command costs a few hundred milliseconds per plugin on every start
// (seconds on a busy machine), which is most of a warm start. So key
// records what it read, beside the builds: every directory whose files can
// change what go list prints or what the build compiles (the plugin's, the
// ones up to its go.mod, each local package it imports), as a digest of
// the entry names and the content of the regular files in it, and the
// embedded files. A later Build re-reads those directories and, when every
// digest matches, takes the recorded key without running the go command.
// The package graph is a function of exactly those files (imports, build
// constraints, go.mod, go.sum pinning the versioned modules) and of the
// toolchain and environment, which name the record. Any difference, or
// any error, falls back to go list.

// inputsVersion names the format of records and what they cover.
const inputsVersion = "gobuild inputs v1"

// maxRecord caps a record file read back.
const maxRecord = 4 << 20

// inputs is the record of one key computation.
type inputs struct {
	Key   string
	Dirs  map[string]string // directory → dirDigest
	Files map[string]string // embedded file → sha256 of its content
}

// recordName is where the record of a key for dir lives: it is named by
// everything besides files that decides the key.
func (b *Builder) recordName(cacheDir, version, dir string, ov *overlay) string {
	h := sha256.New()
	for _, s := range append([]string{inputsVersion, version, strconv.Itoa(abi.Version), dir}, b.buildEnv()...) {
		fmt.Fprintf(h, "%d %s\n", len(s), s)
	}
	if ov != nil {
		fmt.Fprintf(h, "overlay %s %d\n", ov.name, len(ov.src))
		h.Write(ov.src)
	}
	return filepath.Join(cacheDir, "inputs", hex.EncodeToString(h.Sum(nil))[:32]+".json")
}

// recalled returns the key recorded in file, if every input is as
// recorded.
func recalled(file string) (string, bool) {
	f, err := os.Open(file)
	if err != nil {
		return "", false
	}
	defer f.Close()
	var rec inputs
	if err := json.NewDecoder(io.LimitReader(f, maxRecord)).Decode(&rec); err != nil || rec.Key == "" || len(rec.Dirs) == 0 {
		return "", false
	}
	for dir, want := range rec.Dirs {
		if got, err := dirDigest(dir); err != nil || got != want {
			return "", false
		}
	}
	for file, want := range rec.Files {
		if got, err := fileDigest(file); err != nil || got != want {
			return "", false
		}
	}
	return rec.Key, true
}

// record writes rec to file; a failure only costs the next start a go
// list.
func record(file string, rec *inputs) {
	if js, err := json.Marshal(rec); err == nil && len(js) <= maxRecord {
		writeAtomic(file, js)
	}
}

// writeAtomic writes data to file through a temporary file renamed into
// place, so that a reader (maybe another process) never sees half of it.
func writeAtomic(file string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".record-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), file) != nil {
		os.Remove(tmp.Name())
	}
}

// add records dir's digest; a directory that cannot be read makes the
// record useless, so it is dropped (rec.Dirs nil).
func (rec *inputs) add(dir string) {
	if rec.Dirs == nil {
		return
	}
	if _, ok := rec.Dirs[dir]; ok {
		return
	}
	d, err := dirDigest(dir)
	if err != nil {
		rec.Dirs = nil
		return
	}
	rec.Dirs[dir] = d
}

// addFile records an embedded file's digest.
func (rec *inputs) addFile(file string) {
	if rec.Dirs == nil {
		return
	}
	d, err := fileDigest(file)
	if err != nil {
		rec.Dirs = nil
		return
	}
	rec.Files[file] = d
}

// errTooBig refuses to record a file over MaxSourceFile.
var errTooBig = errors.New("file too big to record")

// dirDigest hashes dir's entry names and types and the content of the
// files there the go command reads (tests excepted: the build never reads
// them); embedded files are recorded one by one. Other files count by name
// only: a directory holding the plugin may hold big modules too.
func dirDigest(dir string) (string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	h := sha256.New()
	for _, e := range ents {
		n := e.Name()
		fmt.Fprintf(h, "%d %s %v\n", len(n), n, e.Type())
		if !e.Type().IsRegular() || !readByGo(n) {
			continue
		}
		d, err := fileDigest(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		h.Write([]byte(d))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// readByGo reports whether the go command reads a file of that name when
// building the package in its directory, or resolving its module.
func readByGo(name string) bool {
	switch name {
	case "go.mod", "go.sum", "go.work", "go.work.sum":
		return true
	}
	if strings.HasSuffix(name, "_test.go") {
		return false
	}
	switch filepath.Ext(name) {
	case ".go", ".s", ".S", ".sx", ".h", ".c", ".syso":
		return true
	}
	return false
}

func fileDigest(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, MaxSourceFile+1))
	if err != nil {
		return "", err
	}
	if n > MaxSourceFile {
		return "", errTooBig
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// toolchainName is where the `go version` of goCmd is kept: named by the
// resolved binary's size and modification time, and the GOROOT it sees.
func toolchainName(cacheDir, goCmd string, env []string) (string, bool) {
	path, err := filepath.EvalSymlinks(goCmd)
	if err != nil {
		return "", false
	}
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%d %d\n", inputsVersion, path, fi.Size(), fi.ModTime().UnixNano())
	for _, kv := range env {
		if strings.HasPrefix(kv, "GOROOT=") || strings.HasPrefix(kv, "GOTOOLCHAIN=") {
			fmt.Fprintf(h, "%s\n", kv)
		}
	}
	return filepath.Join(cacheDir, "toolchains", hex.EncodeToString(h.Sum(nil))[:32]), true
}

// readSmall reads at most n bytes of file.
func readSmall(file string, n int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}
