package guest

import (
	"bytes"
	"encoding"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// schema is the subset of JSON Schema (2020-12) the SDK derives from Go
// types. It marshals its keys in a fixed order and its properties in field
// order, so a description is stable from build to build and reads like the
// struct it came from.
type schema struct {
	Type        string
	Title       string
	Description string
	Enum        []any
	// Default is the default value (nil for none), in the field's type.
	Default         any
	Format          string
	ContentEncoding string
	Minimum         *float64
	Maximum         *float64
	Items           *schema
	// Properties is set (possibly empty) for objects derived from structs.
	Properties []property
	Required   []string
	// AdditionalProperties is the value schema of a map.
	AdditionalProperties *schema
}

type property struct {
	Name   string
	Schema *schema
}

func (s *schema) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	field := func(key string, value any) {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		v, err := json.Marshal(value)
		if err != nil { // only plain values reach here
			panic(err)
		}
		b.Write(v)
	}
	if s.Type != "" {
		field("type", s.Type)
	}
	if s.Title != "" {
		field("title", s.Title)
	}
	if s.Description != "" {
		field("description", s.Description)
	}
	if s.Enum != nil {
		field("enum", s.Enum)
	}
	if s.Default != nil {
		field("default", s.Default)
	}
	if s.Format != "" {
		field("format", s.Format)
	}
	if s.ContentEncoding != "" {
		field("contentEncoding", s.ContentEncoding)
	}
	if s.Minimum != nil {
		field("minimum", *s.Minimum)
	}
	if s.Maximum != nil {
		field("maximum", *s.Maximum)
	}
	if s.Items != nil {
		field("items", s.Items)
	}
	if s.Properties != nil {
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(`"properties":{`)
		for i, p := range s.Properties {
			if i > 0 {
				b.WriteByte(',')
			}
			k, _ := json.Marshal(p.Name)
			b.Write(k)
			b.WriteByte(':')
			v, err := p.Schema.MarshalJSON()
			if err != nil {
				return nil, err
			}
			b.Write(v)
		}
		b.WriteByte('}')
	}
	if len(s.Required) > 0 {
		field("required", s.Required)
	}
	if s.AdditionalProperties != nil {
		field("additionalProperties", s.AdditionalProperties)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// fieldDocs holds the doc comments registered by [RegisterFieldDocs].
var fieldDocs struct {
	sync.Mutex
	m map[string]string
}

// RegisterFieldDocs adds descriptions for struct fields and types, keyed
// "<pkgpath>.<Type>.<Field>" for a field and "<pkgpath>.<Type>" for a type
// (pkgpath is "main" in a plugin; Field is the Go name, not the JSON name; a
// field of an unnamed struct type continues its parent field's key, as in
// "main.Order.Address.Street"). A `description` tag on a field wins over its
// registered doc.
//
// Reflection cannot see doc comments, so wasmhost's builder generates a file
// calling RegisterFieldDocs from the plugin's source (package
// [github.com/wasmhost/wasmhost/sdk/guest/fielddocs]) and adds it to the
// build. Plugin authors normally never call it. Schemas are derived when the
// host asks for the description, after every init has run, so the order of
// RegisterFieldDocs and [Register] does not matter.
func RegisterFieldDocs(docs map[string]string) {
	fieldDocs.Lock()
	defer fieldDocs.Unlock()
	if fieldDocs.m == nil {
		fieldDocs.m = make(map[string]string, len(docs))
	}
	for k, v := range docs {
		fieldDocs.m[k] = v
	}
}

func docsSnapshot() map[string]string {
	fieldDocs.Lock()
	defer fieldDocs.Unlock()
	m := make(map[string]string, len(fieldDocs.m))
	for k, v := range fieldDocs.m {
		m[k] = v
	}
	return m
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// deriver turns Go types into schemas. docs may be nil, as when [Register]
// only checks that a type can be described.
type deriver struct {
	docs map[string]string
	// open holds the struct types being derived, to cut recursion: a type
	// that contains itself is described only by its JSON type the second
	// time round.
	open map[reflect.Type]bool
}

func newDeriver(docs map[string]string) *deriver {
	return &deriver{docs: docs, open: map[reflect.Type]bool{}}
}

// rootSchema describes t as the whole of an input, output or elicitation
// schema. The root goes without its type's doc: that is Go documentation
// ("GreetIn is the input of ..."), and the tool's or question's own text
// already says what the object is for.
func rootSchema(t reflect.Type, docs map[string]string) (*schema, error) {
	s, err := newDeriver(docs).derive(t, "")
	if err != nil {
		return nil, err
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if doc := docs[typeKey(t)]; doc != "" && s.Description == doc {
		s.Description = ""
	}
	return s, nil
}

// typeKey is the field-docs key of a named type: "<pkgpath>.<Name>", with
// any type arguments dropped.
func typeKey(t reflect.Type) string {
	if t.Name() == "" {
		return ""
	}
	name, _, _ := strings.Cut(t.Name(), "[")
	return t.PkgPath() + "." + name
}

// derive describes t. key is the docs key under which the fields of an
// unnamed struct type are found ("" for none).
func (d *deriver) derive(t reflect.Type, key string) (*schema, error) {
	s, err := d.deriveType(t, key)
	if err != nil {
		return nil, err
	}
	if doc := d.docs[typeKey(t)]; doc != "" && s.Description == "" {
		s.Description = doc
	}
	return s, nil
}

func (d *deriver) deriveType(t reflect.Type, key string) (*schema, error) {
	switch {
	case t == timeType:
		return &schema{Type: "string", Format: "date-time"}, nil
	case t == rawMessageType:
		return &schema{}, nil
	case t.Kind() != reflect.Pointer && t.Implements(jsonMarshalerType):
		return &schema{}, nil // a custom encoding: any JSON value
	case t.Kind() != reflect.Pointer && t.Implements(textMarshalerType):
		return &schema{Type: "string"}, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return &schema{Type: "boolean"}, nil
	case reflect.String:
		return &schema{Type: "string"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &schema{Type: "integer"}, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		zero := 0.0
		return &schema{Type: "integer", Minimum: &zero}, nil
	case reflect.Float32, reflect.Float64:
		return &schema{Type: "number"}, nil
	case reflect.Interface:
		return &schema{}, nil
	case reflect.Pointer:
		return d.derive(t.Elem(), key)
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 {
			return &schema{Type: "string", ContentEncoding: "base64"}, nil
		}
		items, err := d.derive(t.Elem(), key)
		if err != nil {
			return nil, err
		}
		return &schema{Type: "array", Items: items}, nil
	case reflect.Map:
		switch k := t.Key(); {
		case k.Kind() == reflect.String, k.Implements(textMarshalerType):
		case k.Kind() >= reflect.Int && k.Kind() <= reflect.Uintptr:
		default:
			return nil, fmt.Errorf("map key type %s cannot be a JSON object key", k)
		}
		values, err := d.derive(t.Elem(), key)
		if err != nil {
			return nil, err
		}
		return &schema{Type: "object", AdditionalProperties: values}, nil
	case reflect.Struct:
		if d.open[t] {
			return &schema{Type: "object"}, nil
		}
		d.open[t] = true
		defer delete(d.open, t)
		if t.Name() != "" {
			key = typeKey(t)
		}
		s := &schema{Type: "object", Properties: []property{}}
		if err := d.addFields(s, t, key, map[string]bool{}); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("type %s has no JSON encoding", t)
}

// addFields adds the properties of struct t to s in encoding/json's order,
// promoting the fields of embedded structs where they are embedded. A name
// in taken, or declared directly in t, shadows a promoted field of that name.
func (d *deriver) addFields(s *schema, t reflect.Type, key string, taken map[string]bool) error {
	type jsonField struct {
		f        reflect.StructField
		name     string
		opts     string
		embedded reflect.Type // the struct promoted, if any
	}
	var fields []jsonField
	own := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				fields = append(fields, jsonField{f: f, embedded: ft})
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields = append(fields, jsonField{f: f, name: name, opts: opts})
		own[name] = true
	}
	for _, jf := range fields {
		if jf.embedded != nil {
			inner := maps.Clone(taken)
			maps.Copy(inner, own)
			if err := d.addFields(s, jf.embedded, typeKey(jf.embedded), inner); err != nil {
				return fmt.Errorf("embedded %s: %w", jf.f.Name, err)
			}
			for name := range inner { // what it promoted is now taken too
				if !own[name] {
					taken[name] = true
				}
			}
			continue
		}
		if taken[jf.name] {
			continue
		}
		taken[jf.name] = true
		fieldKey := ""
		if key != "" {
			fieldKey = key + "." + jf.f.Name
		}
		fs, optional, err := d.field(jf.f, fieldKey, jf.opts)
		if err != nil {
			return fmt.Errorf("field %s: %w", jf.f.Name, err)
		}
		s.Properties = append(s.Properties, property{Name: jf.name, Schema: fs})
		if !optional {
			s.Required = append(s.Required, jf.name)
		}
	}
	return nil
}

// field describes one struct field and says whether it may be left out.
func (d *deriver) field(f reflect.StructField, key, jsonOpts string) (*schema, bool, error) {
	optional := f.Type.Kind() == reflect.Pointer
	asString := false
	for _, o := range strings.Split(jsonOpts, ",") {
		switch o {
		case "omitempty", "omitzero":
			optional = true
		case "string":
			asString = true
		}
	}
	s, err := d.derive(f.Type, key)
	if err != nil {
		return nil, false, err
	}
	if asString {
		s = &schema{Type: "string", Description: s.Description}
	}
	s = s.clone()
	if doc := d.docs[key]; doc != "" {
		s.Description = doc
	}
	if desc, ok := f.Tag.Lookup("description"); ok {
		s.Description = desc
	}
	if tag, ok := f.Tag.Lookup("jsonschema"); ok {
		opt, err := applySchemaTag(s, tag)
		if err != nil {
			return nil, false, err
		}
		optional = optional || opt
	}
	return s, optional, nil
}

func (s *schema) clone() *schema {
	c := *s
	return &c
}

// applySchemaTag applies a `jsonschema:"..."` tag: comma-separated
// enum=a|b|c, default=V, format=F, minimum=N, maximum=N, title=T and
// optional. It reports whether the field was marked optional.
func applySchemaTag(s *schema, tag string) (optional bool, err error) {
	for item := range strings.SplitSeq(tag, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(item), "=")
		switch k {
		case "":
		case "optional":
			optional = true
		case "enum":
			s.Enum = nil
			for value := range strings.SplitSeq(v, "|") {
				e, err := tagValue("enum", s.Type, value)
				if err != nil {
					return false, err
				}
				s.Enum = append(s.Enum, e)
			}
		case "default":
			d, err := tagValue("default", s.Type, v)
			if err != nil {
				return false, err
			}
			s.Default = d
		case "format":
			s.Format = v
		case "title":
			s.Title = v
		case "minimum", "maximum":
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return false, fmt.Errorf("jsonschema tag: %s=%q is not a number", k, v)
			}
			if k == "minimum" {
				s.Minimum = &n
			} else {
				s.Maximum = &n
			}
		default:
			return false, fmt.Errorf("jsonschema tag: unknown key %q (want enum, default, format, minimum, maximum, title or optional)", k)
		}
	}
	return optional, nil
}

// tagValue reads an enum or default value (what names which) in the
// field's own JSON type.
func tagValue(what, typ, v string) (any, error) {
	switch typ {
	case "integer":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("jsonschema tag: %s value %q is not an integer", what, v)
		}
		return n, nil
	case "number":
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("jsonschema tag: %s value %q is not a number", what, v)
		}
		return n, nil
	case "boolean":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("jsonschema tag: %s value %q is not a boolean", what, v)
		}
		return b, nil
	}
	return v, nil
}

// SchemaFor returns the JSON Schema the SDK derives for T, with the field
// docs registered so far (type docs describe nested objects, not the root). It is what [Register] puts in a tool's
// inputSchema and outputSchema, exported so that plugin authors can see what
// their structs become.
func SchemaFor[T any]() (json.RawMessage, error) {
	s, err := rootSchema(reflect.TypeFor[T](), docsSnapshot())
	if err != nil {
		return nil, fmt.Errorf("guest: schema for %s: %w", reflect.TypeFor[T](), err)
	}
	return json.Marshal(s)
}

// elicitationSchema derives the requestedSchema of an elicitation for t,
// which MCP restricts to a flat object of string, number, integer, boolean
// and enum properties.
func elicitationSchema(t reflect.Type, docs map[string]string) (*schema, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("elicitation answer type %s must be a struct", t)
	}
	s, err := rootSchema(t, docs)
	if err != nil {
		return nil, fmt.Errorf("elicitation answer type %s: %w", t, err)
	}
	for _, p := range s.Properties {
		switch p.Schema.Type {
		case "string", "number", "integer", "boolean":
			if p.Schema.Items == nil && p.Schema.Properties == nil && p.Schema.AdditionalProperties == nil {
				continue
			}
		}
		return nil, fmt.Errorf("elicitation answer type %s: property %q is not a string, number, integer, boolean or enum; MCP elicitation allows only a flat object of those", t, p.Name)
	}
	return s, nil
}
