// Package fielddocs generates the Go file that hands a plugin's struct field
// doc comments to the guest SDK, so that they become descriptions in its
// JSON Schemas. Reflection cannot see comments; this package reads them with
// go/ast at build time.
//
// wasmhost's builder calls [Generate] on the plugin's directory and adds the
// file to the build with go build -overlay, leaving the plugin's source
// untouched:
//
//	name, src, err := fielddocs.Generate(dir)
//	// write src to a temporary file tmp, then build with an overlay
//	// {"Replace": {filepath.Join(dir, name): tmp}}
//
// The package owns only that translation. It uses the standard library only
// and never writes files.
package fielddocs

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// FileName is the name Generate gives the generated file. A file of that
// name in the plugin's directory is ignored when reading the docs, and the
// overlay replaces it.
const FileName = "zz_wasmhost_fielddocs.go"

// guestImport is the import path of the guest SDK.
const guestImport = "github.com/wasmhost/wasmhost/sdk/guest"

// Generate reads the Go package in dir as it builds for GOOS=wasip1
// GOARCH=wasm (test files and files excluded by build constraints are
// skipped) and returns a file of the same package whose init passes the doc
// comments of its struct fields and struct types to guest.RegisterFieldDocs.
// filename is [FileName], to be placed in dir; src is gofmt-formatted.
//
// Keys are "<pkgpath>.<Type>" and "<pkgpath>.<Type>.<Field>", where pkgpath
// is "main" for a main package (what reflect reports for its types) and the
// directory's import path otherwise, Field is the Go field name, and the
// fields of an unnamed struct type continue their field's key
// ("main.Order.Address.Street"). Only types declared at package level are
// read. A field's doc comment is used, or else its line comment; comment
// text is cleaned up as by go/ast's CommentGroup.Text, with lines within a
// paragraph joined by spaces.
//
// The file is generated even when there are no docs, so the builder's step
// is always the same; it then registers an empty map.
func Generate(dir string) (filename string, src []byte, err error) {
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH = "wasip1", "wasm"
	ctx.CgoEnabled = false
	pkg, err := ctx.ImportDir(dir, 0)
	if err != nil {
		return "", nil, fmt.Errorf("fielddocs: reading package in %s: %w", dir, err)
	}
	pkgPath := "main"
	if pkg.Name != "main" {
		if pkgPath, err = importPath(dir); err != nil {
			return "", nil, fmt.Errorf("fielddocs: package %s in %s: %w", pkg.Name, dir, err)
		}
	}
	docs := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range pkg.GoFiles {
		if name == FileName {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return "", nil, fmt.Errorf("fielddocs: %w", err)
		}
		collect(f, pkgPath, docs)
	}
	src, err = render(pkg.Name, docs)
	if err != nil {
		return "", nil, fmt.Errorf("fielddocs: formatting the generated file: %w", err)
	}
	return FileName, src, nil
}

// collect adds the docs of every package-level struct type in f.
func collect(f *ast.File, pkgPath string, docs map[string]string) {
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.TYPE {
			continue
		}
		for _, spec := range gen.Specs {
			ts := spec.(*ast.TypeSpec)
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			key := pkgPath + "." + ts.Name.Name
			doc := ts.Doc
			if doc == nil && len(gen.Specs) == 1 {
				doc = gen.Doc // "// T is ..." above "type T struct"
			}
			if text := clean(doc); text != "" {
				docs[key] = text
			}
			collectFields(st, key, docs)
		}
	}
}

func collectFields(st *ast.StructType, key string, docs map[string]string) {
	for _, field := range st.Fields.List {
		text := clean(field.Doc)
		if text == "" {
			text = clean(field.Comment)
		}
		names := field.Names
		if len(names) == 0 { // embedded: its own type carries its docs
			continue
		}
		for _, name := range names {
			fieldKey := key + "." + name.Name
			if text != "" {
				docs[fieldKey] = text
			}
			if inner, ok := unnamedStruct(field.Type); ok {
				collectFields(inner, fieldKey, docs)
			}
		}
	}
}

// unnamedStruct finds a struct literal type behind pointers, slices, arrays
// and map values, whose fields the SDK keys under the field's own key.
func unnamedStruct(t ast.Expr) (*ast.StructType, bool) {
	for {
		switch e := t.(type) {
		case *ast.StructType:
			return e, true
		case *ast.StarExpr:
			t = e.X
		case *ast.ArrayType:
			t = e.Elt
		case *ast.MapType:
			t = e.Value
		case *ast.ParenExpr:
			t = e.X
		default:
			return nil, false
		}
	}
}

// clean returns a comment's text with the lines of each paragraph joined.
func clean(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	var paras []string
	for para := range strings.SplitSeq(strings.TrimSpace(cg.Text()), "\n\n") {
		if p := strings.Join(strings.Fields(para), " "); p != "" {
			paras = append(paras, p)
		}
	}
	return strings.Join(paras, "\n\n")
}

// importPath finds the import path of the package in dir from the nearest
// go.mod above it.
func importPath(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for root := abs; ; {
		data, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err == nil {
			for line := range strings.Lines(string(data)) {
				if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
					mod := strings.Trim(strings.TrimSpace(rest), `"`)
					rel, err := filepath.Rel(root, abs)
					if err != nil || rel == "." {
						return mod, err
					}
					return mod + "/" + filepath.ToSlash(rel), nil
				}
			}
			return "", fmt.Errorf("%s has no module line", filepath.Join(root, "go.mod"))
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", errors.New("no go.mod above it to tell its import path")
		}
		root = parent
	}
}

func render(pkgName string, docs map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Code generated by wasmhost's fielddocs; DO NOT EDIT.\n\n")
	fmt.Fprintf(&b, "package %s\n\n", pkgName)
	// The alias keeps clear of the plugin's own package-level names.
	fmt.Fprintf(&b, "import wasmhostguest %q\n\n", guestImport)
	b.WriteString("func init() {\n\twasmhostguest.RegisterFieldDocs(map[string]string{\n")
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\t\t%s: %s,\n", strconv.Quote(k), strconv.Quote(docs[k]))
	}
	b.WriteString("\t})\n}\n")
	return format.Source(b.Bytes())
}
