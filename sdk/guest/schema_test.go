package guest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

type schemaBasics struct {
	S      string         `json:"s"`
	B      bool           `json:"b"`
	I      int64          `json:"i"`
	U      uint8          `json:"u"`
	F      float32        `json:"f"`
	Opt    *int           `json:"opt"`
	Omit   string         `json:"omit,omitempty"`
	Raw    []byte         `json:"raw"`
	L      []string       `json:"l"`
	A      [2]float64     `json:"a"`
	M      map[string]int `json:"m"`
	Any    any            `json:"any"`
	T      time.Time      `json:"t"`
	Str    int            `json:"str,string"`
	Def    string         // no tag: Go name
	Skip   string         `json:"-"`
	hidden string
}

type schemaTags struct {
	Colour string  `json:"colour" jsonschema:"enum=red|green|blue" description:"Pick one."`
	Level  int     `json:"level" jsonschema:"enum=1|2|3,title=Level"`
	Ratio  float64 `json:"ratio" jsonschema:"minimum=0,maximum=1"`
	Email  string  `json:"email" jsonschema:"format=email,optional"`
}

type schemaInner struct {
	X int `json:"x"`
}

type SchemaEmbedded struct {
	E string `json:"e"`
	X string `json:"x"` // shadowed by schemaNested.X
}

type schemaNested struct {
	SchemaEmbedded
	X     int `json:"x"`
	In    schemaInner
	Ptr   *schemaInner            `json:"ptr"`
	List  []schemaInner           `json:"list"`
	ByKey map[string]*schemaInner `json:"byKey,omitempty"`
	Anon  struct {
		Y bool `json:"y"`
	} `json:"anon"`
}

type schemaTree struct {
	Name     string       `json:"name"`
	Children []schemaTree `json:"children,omitempty"`
}

type schemaGeneric[T any] struct {
	Items []T `json:"items"`
}

func TestDerive(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		docs map[string]string
		want string
	}{
		{"basics", reflect.TypeFor[schemaBasics](), nil, `{"type":"object","properties":{` +
			`"s":{"type":"string"},"b":{"type":"boolean"},"i":{"type":"integer"},"u":{"type":"integer","minimum":0},` +
			`"f":{"type":"number"},"opt":{"type":"integer"},"omit":{"type":"string"},` +
			`"raw":{"type":"string","contentEncoding":"base64"},"l":{"type":"array","items":{"type":"string"}},` +
			`"a":{"type":"array","items":{"type":"number"}},"m":{"type":"object","additionalProperties":{"type":"integer"}},` +
			`"any":{},"t":{"type":"string","format":"date-time"},"str":{"type":"string"},"Def":{"type":"string"}},` +
			`"required":["s","b","i","u","f","raw","l","a","m","any","t","str","Def"]}`},
		{"tags", reflect.TypeFor[schemaTags](), nil, `{"type":"object","properties":{` +
			`"colour":{"type":"string","description":"Pick one.","enum":["red","green","blue"]},` +
			`"level":{"type":"integer","title":"Level","enum":[1,2,3]},` +
			`"ratio":{"type":"number","minimum":0,"maximum":1},` +
			`"email":{"type":"string","format":"email"}},"required":["colour","level","ratio"]}`},
		{"nested", reflect.TypeFor[schemaNested](), map[string]string{
			"github.com/wasmhost/wasmhost/sdk/guest.schemaInner":         "An inner value.",
			"github.com/wasmhost/wasmhost/sdk/guest.schemaNested.Ptr":    "Field doc wins.",
			"github.com/wasmhost/wasmhost/sdk/guest.schemaNested.Anon.Y": "Unnamed struct field.",
			"github.com/wasmhost/wasmhost/sdk/guest.SchemaEmbedded.E":    "Promoted.",
		}, `{"type":"object","properties":{` +
			`"e":{"type":"string","description":"Promoted."},` +
			`"x":{"type":"integer"},` +
			`"In":{"type":"object","description":"An inner value.","properties":{"x":{"type":"integer"}},"required":["x"]},` +
			`"ptr":{"type":"object","description":"Field doc wins.","properties":{"x":{"type":"integer"}},"required":["x"]},` +
			`"list":{"type":"array","items":{"type":"object","description":"An inner value.","properties":{"x":{"type":"integer"}},"required":["x"]}},` +
			`"byKey":{"type":"object","additionalProperties":{"type":"object","description":"An inner value.","properties":{"x":{"type":"integer"}},"required":["x"]}},` +
			`"anon":{"type":"object","properties":{"y":{"type":"boolean","description":"Unnamed struct field."}},"required":["y"]}},` +
			`"required":["e","x","In","list","anon"]}`},
		{"recursive", reflect.TypeFor[schemaTree](), nil, `{"type":"object","properties":{` +
			`"name":{"type":"string"},"children":{"type":"array","items":{"type":"object"}}},"required":["name"]}`},
		{"generic", reflect.TypeFor[schemaGeneric[int]](), map[string]string{
			"github.com/wasmhost/wasmhost/sdk/guest.schemaGeneric.Items": "Generic field.",
		}, `{"type":"object","properties":{"items":{"type":"array","description":"Generic field.","items":{"type":"integer"}}},"required":["items"]}`},
		{"empty", reflect.TypeFor[struct{}](), nil, `{"type":"object","properties":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newDeriver(tt.docs).derive(tt.typ, "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("schema:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestDeriveErrors(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"chan", reflect.TypeFor[struct{ C chan int }](), "field C: type chan int has no JSON encoding"},
		{"func", reflect.TypeFor[struct{ F []func() }](), "field F: type func() has no JSON encoding"},
		{"map key", reflect.TypeFor[struct{ M map[[2]int]string }](), "field M: map key type [2]int cannot be a JSON object key"},
		{"unknown tag", reflect.TypeFor[struct {
			S string `jsonschema:"enums=a"`
		}](), `field S: jsonschema tag: unknown key "enums"`},
		{"bad enum", reflect.TypeFor[struct {
			N int `jsonschema:"enum=1|two"`
		}](), `field N: jsonschema tag: enum value "two" is not an integer`},
		{"bad minimum", reflect.TypeFor[struct {
			N int `jsonschema:"minimum=x"`
		}](), `field N: jsonschema tag: minimum="x" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newDeriver(nil).derive(tt.typ, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestElicitationSchema(t *testing.T) {
	type ok struct {
		Name   string   `json:"name"`
		Age    int      `json:"age,omitempty"`
		Score  *float64 `json:"score"`
		Agree  bool     `json:"agree"`
		Colour string   `json:"colour" jsonschema:"enum=red|green"`
	}
	s, err := elicitationSchema(reflect.TypeFor[ok](), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(s)
	want := `{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"score":{"type":"number"},` +
		`"agree":{"type":"boolean"},"colour":{"type":"string","enum":["red","green"]}},"required":["name","agree","colour"]}`
	if string(got) != want {
		t.Errorf("schema:\n%s\nwant:\n%s", got, want)
	}

	bad := []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[string](), "must be a struct"},
		{reflect.TypeFor[struct{ L []string }](), `property "L" is not a string, number, integer, boolean or enum`},
		{reflect.TypeFor[struct{ In schemaInner }](), `property "In" is not`},
		{reflect.TypeFor[struct{ M map[string]string }](), `property "M" is not`},
		{reflect.TypeFor[struct{ A any }](), `property "A" is not`},
	}
	for _, tt := range bad {
		if _, err := elicitationSchema(tt.typ, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.typ, err, tt.want)
		}
	}
}

func TestDefaultTag(t *testing.T) {
	type form struct {
		Name     string  `json:"name,omitempty" jsonschema:"default=John Doe"`
		Age      int     `json:"age,omitempty" jsonschema:"default=30"`
		Score    float64 `json:"score,omitempty" jsonschema:"default=95.5"`
		Status   string  `json:"status,omitempty" jsonschema:"enum=active|inactive,default=active"`
		Verified bool    `json:"verified,omitempty" jsonschema:"default=false"`
	}
	s, err := elicitationSchema(reflect.TypeFor[form](), nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(s)
	want := `{"type":"object","properties":{"name":{"type":"string","default":"John Doe"},"age":{"type":"integer","default":30},` +
		`"score":{"type":"number","default":95.5},"status":{"type":"string","enum":["active","inactive"],"default":"active"},` +
		`"verified":{"type":"boolean","default":false}}}`
	if string(got) != want {
		t.Errorf("schema:\n%s\nwant:\n%s", got, want)
	}
	for _, tt := range []struct {
		typ  reflect.Type
		want string
	}{
		{reflect.TypeFor[struct {
			N int `jsonschema:"default=many"`
		}](), `field N: jsonschema tag: default value "many" is not an integer`},
		{reflect.TypeFor[struct {
			B bool `jsonschema:"default=yes please"`
		}](), `field B: jsonschema tag: default value "yes please" is not a boolean`},
	} {
		if _, err := newDeriver(nil).derive(tt.typ, ""); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("err = %v, want %q", err, tt.want)
		}
	}
}
