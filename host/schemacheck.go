package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Limits on a JSON Schema from a guest (tool input and output schemas,
// elicitation requestedSchema). The front end validates every call's
// arguments against the input schema on the host, so a schema is host CPU
// spent on the guest's behalf: a 2 KB schema whose $defs each allOf-refer
// twice to the next took 12.7 s per validation at depth 24 and doubles
// with every level. Refused at Load, before anything validates against it.
const (
	// maxSchemaDepth caps how deep a schema document nests.
	maxSchemaDepth = 64
	// maxSchemaNodes caps the schema's size with every $ref expanded in
	// place (a reference back into its own chain, recursion, counts once:
	// its cost is bounded by the instance's depth).
	maxSchemaNodes = 50_000
)

// schemaComplexity checks raw against maxSchemaDepth and maxSchemaNodes in
// time linear in its size.
func schemaComplexity(raw json.RawMessage) error {
	var root any
	if err := json.Unmarshal(raw, &root); err != nil {
		return fmt.Errorf("is not JSON: %w", err)
	}
	if d := depth(root, 0); d > maxSchemaDepth {
		return fmt.Errorf("nests more than %d levels deep", maxSchemaDepth)
	}
	c := &schemaCost{root: root, anchors: map[string]any{}, memo: map[string]int{}, onStack: map[string]bool{}}
	c.collectAnchors(root)
	n, err := c.size("#", root)
	if err != nil {
		return err
	}
	if n > maxSchemaNodes {
		return fmt.Errorf("expands to more than %d nodes once its $refs are followed; flatten it or share less", maxSchemaNodes)
	}
	return nil
}

func depth(v any, d int) int {
	if d > maxSchemaDepth {
		return d
	}
	deepest := d
	switch v := v.(type) {
	case map[string]any:
		for _, c := range v {
			deepest = max(deepest, depth(c, d+1))
		}
	case []any:
		for _, c := range v {
			deepest = max(deepest, depth(c, d+1))
		}
	}
	return deepest
}

// schemaCost computes expanded sizes, memoised by location so that shared
// definitions are counted (not walked) once per reference.
type schemaCost struct {
	root    any
	anchors map[string]any // "#name" → schema, for $anchor and $dynamicAnchor
	memo    map[string]int
	onStack map[string]bool
}

func (c *schemaCost) collectAnchors(v any) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range []string{"$anchor", "$dynamicAnchor"} {
			if a, ok := v[k].(string); ok {
				c.anchors["#"+a] = v
			}
		}
		for _, ch := range v {
			c.collectAnchors(ch)
		}
	case []any:
		for _, ch := range v {
			c.collectAnchors(ch)
		}
	}
}

// size returns the expanded node count of v at location key, saturating
// just above the limit.
func (c *schemaCost) size(key string, v any) (int, error) {
	if n, ok := c.memo[key]; ok {
		return n, nil
	}
	if c.onStack[key] {
		return 1, nil // recursion: paid per level of the instance
	}
	c.onStack[key] = true
	defer delete(c.onStack, key)
	n := 1
	add := func(m int) { n = min(n+m, maxSchemaNodes+1) }
	switch v := v.(type) {
	case map[string]any:
		for k, ch := range v {
			if (k == "$ref" || k == "$dynamicRef") && isString(ch) {
				target, tkey, err := c.resolve(ch.(string))
				if err != nil {
					return 0, err
				}
				m, err := c.size(tkey, target)
				if err != nil {
					return 0, err
				}
				add(m)
				continue
			}
			m, err := c.size(key+"/"+escapePointer(k), ch)
			if err != nil {
				return 0, err
			}
			add(m)
		}
	case []any:
		for i, ch := range v {
			m, err := c.size(key+"/"+strconv.Itoa(i), ch)
			if err != nil {
				return 0, err
			}
			add(m)
		}
	}
	c.memo[key] = n
	return n, nil
}

func isString(v any) bool { _, ok := v.(string); return ok }

// resolve finds a reference inside the document: "#", a JSON pointer
// "#/a/b" or an anchor "#name". Anything else cannot be bounded here, and
// the front end could not resolve it either.
func (c *schemaCost) resolve(ref string) (any, string, error) {
	if a, ok := c.anchors[ref]; ok {
		return a, "anchor " + ref, nil
	}
	if ref != "#" && !strings.HasPrefix(ref, "#/") {
		return nil, "", fmt.Errorf("has $ref %q, which is not inside the schema; inline it", ref)
	}
	v := c.root
	key := "#"
	for _, part := range strings.Split(ref, "/")[1:] {
		if p, err := url.PathUnescape(part); err == nil {
			part = p
		}
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		switch cur := v.(type) {
		case map[string]any:
			v = cur[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(cur) {
				return nil, "", fmt.Errorf("has $ref %q, which points at nothing", ref)
			}
			v = cur[i]
		default:
			v = nil
		}
		if v == nil {
			return nil, "", fmt.Errorf("has $ref %q, which points at nothing", ref)
		}
		key += "/" + escapePointer(part)
	}
	return v, key, nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// validators bounds the validations running at once. A validation is host
// CPU spent on a guest's schema and a client's data, and plain Go code
// cannot be interrupted: one whose caller gave up runs on to its end (its
// cost is bounded by the schema limits above), holding its place here, so
// abandoned validations never take more than these cores; the next caller
// waits for a place under its own context.
var validators = make(chan struct{}, max(runtime.GOMAXPROCS(0), 1))

// Validate runs check (the validation of a call's arguments, or of an
// answer against a requestedSchema) under ctx and within budget, the
// call's run-time budget: it returns ctx's error once ctx ends, and an
// error wrapping ErrRunBudget once budget has passed, without waiting for
// check to finish.
func Validate(ctx context.Context, budget time.Duration, check func() error) error {
	if budget <= 0 {
		budget = DefaultRunBudget
	}
	ctx, cancel := context.WithTimeoutCause(ctx, budget, ErrRunBudget)
	defer cancel()
	if ctx.Err() != nil { // else select could pick a free place over it
		return validationEnded(ctx, budget)
	}
	select {
	case validators <- struct{}{}:
	case <-ctx.Done():
		return validationEnded(ctx, budget)
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-validators }()
		done <- ValidateInline(check) // a validator bug must not end the process
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return validationEnded(ctx, budget)
	}
}

func validationEnded(ctx context.Context, budget time.Duration) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrRunBudget) {
		return fmt.Errorf("validation: %w of %v", ErrRunBudget, budget)
	}
	return ctx.Err()
}

// Keywords of a linear schema (LinearSchema): each instance value meets at
// most one subschema per level, and no keyword costs more than a pass over
// the value it applies to. Left out: references and combinators (one value
// meets many subschemas), pattern and patternProperties (regular
// expressions), uniqueItems (quadratic), and everything rarer.
var (
	linearSchemaValued = map[string]bool{"items": true, "additionalProperties": true, "propertyNames": true}
	linearPlain        = map[string]bool{
		"type": true, "required": true, "enum": true, "const": true,
		"title": true, "description": true, "default": true, "examples": true, "$comment": true, "$schema": true,
		"deprecated": true, "readOnly": true, "writeOnly": true, "format": true,
		"minLength": true, "maxLength": true, "minimum": true, "maximum": true,
		"exclusiveMinimum": true, "exclusiveMaximum": true, "multipleOf": true,
		"minItems": true, "maxItems": true, "minProperties": true, "maxProperties": true,
		"contentMediaType": true, "contentEncoding": true,
	}
)

// maxLinearNodes caps the subschemas of a linear schema.
const maxLinearNodes = 1000

// LinearSchema reports whether validating an instance against the schema
// raw costs time linear in the instance with a small constant, as
// decoding it does: then the validation may run inline (ValidateInline)
// rather than through Validate. Most tools' input schemas are (objects of
// typed properties).
func LinearSchema(raw json.RawMessage) bool {
	var root any
	if json.Unmarshal(raw, &root) != nil {
		return false
	}
	nodes := 0
	var linear func(v any) bool
	linear = func(v any) bool {
		if nodes++; nodes > maxLinearNodes {
			return false
		}
		switch s := v.(type) {
		case bool:
			return true
		case map[string]any:
			for k, ch := range s {
				switch {
				case k == "properties":
					props, ok := ch.(map[string]any)
					if !ok {
						return false
					}
					for _, p := range props {
						if !linear(p) {
							return false
						}
					}
				case linearSchemaValued[k]:
					if !linear(ch) {
						return false
					}
				case !linearPlain[k]:
					return false
				}
			}
			return true
		}
		return false
	}
	return linear(root)
}

// ValidateInline runs check on the caller's goroutine. For the validation
// of an instance against a schema LinearSchema accepts, its cost is that
// of reading the instance, which the caller has just paid, so it needs
// neither Validate's place nor its goroutine (whose stack grew afresh on
// every call). A panic in the validator is returned as an error.
func ValidateInline(check func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("validation failed: %v", p)
		}
	}()
	return check()
}
