package worker_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The contract doc's "Every wire name" section is what a client in
// another language is written against; these tests hold it to the code.
const contractDoc = "../docs/contract.md"

// wire is one field on the wire as the doc or the code has it: its name,
// whether it is left out when zero, and for the activity table the wire
// fields of a nested object.
type wire struct {
	Name     string
	Optional bool
	Nested   []wire
}

func (w wire) String() string {
	s := "`" + w.Name + "`"
	if w.Optional {
		s += "?"
	}
	if w.Nested != nil {
		s += " " + wiresString(w.Nested)
	}
	return s
}

func wiresString(ws []wire) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// docSection returns the rows ("| … |" lines) of the doc between the
// heading that starts with from and the next heading of that level or
// higher.
func docSection(t *testing.T, from string) []string {
	t.Helper()
	b, err := os.ReadFile(contractDoc)
	require.NoError(t, err)
	var rows []string
	in := false
	level := strings.Index(from, " ")
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "#") {
			l := strings.Index(line, " ")
			switch {
			case strings.HasPrefix(line, from):
				in = true
				continue
			case in && l <= level:
				in = false
			}
		}
		if in && strings.HasPrefix(line, "| `") {
			rows = append(rows, line)
		}
	}
	require.NotEmpty(t, rows, "no table rows under %q in %s", from, contractDoc)
	return rows
}

// cells splits a table row into its trimmed cells.
func cells(row string) []string {
	parts := strings.Split(strings.Trim(row, "|"), " | ")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

var (
	parenthetical = regexp.MustCompile(`\s*\([^)]*\)`)
	docName       = regexp.MustCompile("`([^`]+)`(\\?)?")
)

// TestContractDocNamesEveryWireField: every exported struct of package
// contract (read from its source) has a row in the doc's table of
// workflow, signal, update and query payloads, listing each field's wire
// name in order and marking exactly the omitempty ones optional; the
// table names no type the package does not have.
func TestContractDocNamesEveryWireField(t *testing.T) {
	code := contractStructs(t)
	doc := map[string][]wire{}
	for _, row := range docSection(t, "### Workflow, signal, update and query payloads") {
		c := cells(row)
		require.Len(t, c, 2, "row %q", row)
		typ := strings.Trim(c[0], "`")
		var fields []wire
		for _, m := range docName.FindAllStringSubmatch(parenthetical.ReplaceAllString(c[1], ""), -1) {
			fields = append(fields, wire{Name: m[1], Optional: m[2] == "?"})
		}
		doc[typ] = fields
	}
	for name, fields := range code {
		got, ok := doc[name]
		if !assert.True(t, ok, "contract.%s has no row in %s", name, contractDoc) {
			continue
		}
		assert.Equal(t, wiresString(fields), wiresString(got), "contract.%s: the code's wire fields, then the doc's", name)
	}
	for name := range doc {
		_, ok := code[name]
		assert.True(t, ok, "%s documents contract.%s, which the package does not have", contractDoc, name)
	}
}

// contractStructs reads package contract's source: each exported struct
// type's wire fields, by type name.
func contractStructs(t *testing.T) map[string][]wire {
	t.Helper()
	files, err := filepath.Glob("../contract/*.go")
	require.NoError(t, err)
	out := map[string][]wire{}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.TypeSpec)
			if !ok || !spec.Name.IsExported() {
				return true
			}
			st, ok := spec.Type.(*ast.StructType)
			if !ok {
				return true
			}
			var fields []wire
			for _, field := range st.Fields.List {
				require.NotEmpty(t, field.Names, "contract.%s embeds a type: the doc lists its fields only when they are written out", spec.Name.Name)
				var tag reflect.StructTag
				if field.Tag != nil {
					s, err := strconv.Unquote(field.Tag.Value)
					require.NoError(t, err)
					tag = reflect.StructTag(s)
				}
				for _, id := range field.Names {
					if w, ok := wireOf(id.Name, id.IsExported(), tag); ok {
						fields = append(fields, w)
					}
				}
			}
			out[spec.Name.Name] = fields
			return false
		})
	}
	require.NotEmpty(t, out)
	return out
}

// wireOf is a field's wire name and optionality from its json tag, as
// encoding/json reads it; false for a field not on the wire.
func wireOf(name string, exported bool, tag reflect.StructTag) (wire, bool) {
	if !exported {
		return wire{}, false
	}
	opts := strings.Split(tag.Get("json"), ",")
	if opts[0] == "-" && len(opts) == 1 {
		return wire{}, false
	}
	if opts[0] != "" {
		name = opts[0]
	}
	return wire{Name: name, Optional: slices.Contains(opts[1:], "omitempty")}, true
}

// TestActivityDocNamesEveryWireField: the doc's activity table has a row
// for every registered activity, naming its struct, its input and result
// types and their wire fields (nested objects in braces) as the code has
// them, and no row for an activity the worker does not register.
func TestActivityDocNamesEveryWireField(t *testing.T) {
	payloads := registeredPayloads(t)
	activities := map[string]bool{}
	for label := range payloads {
		if rest, ok := strings.CutPrefix(label, "activity "); ok {
			activities[strings.Fields(rest)[0]] = true
		}
	}
	rowName := regexp.MustCompile("^`([^`]+)` \\(`([^`]+)`, `[^`]+`\\)$")
	documented := map[string]bool{}
	for _, row := range docSection(t, "### Activity payloads") {
		c := cells(row)
		require.Len(t, c, 3, "row %q", row)
		m := rowName.FindStringSubmatch(c[0])
		require.NotNil(t, m, "row %q: the first cell is `Method` (`Struct`, `queue`)", row)
		name := m[2] + "." + m[1]
		documented[name] = true
		if !assert.True(t, activities[name], "%s documents activity %s, which the worker does not register", contractDoc, name) {
			continue
		}
		for i, side := range []string{"input", "result"} {
			typ, ok := payloads[fmt.Sprintf("activity %s %s 1", name, side)]
			want := "none"
			if ok {
				want = typeWires(typ)
			}
			assert.Equal(t, want, normaliseDocCell(c[1+i]), "activity %s %s: the code's, then the doc's", name, side)
		}
	}
	for name := range activities {
		assert.True(t, documented[name], "activity %s has no row in %s", name, contractDoc)
	}
}

// typeWires renders a payload type as the doc's activity table does:
// "`Type` {`field`, `opt`?, `nested` {…}}", or "`type`" for one that is
// not a struct written out field by field.
func typeWires(typ reflect.Type) string {
	base := elem(typ)
	fields := structWires(base)
	if fields == nil {
		return "`" + base.Name() + "`"
	}
	return "`" + base.Name() + "` " + wiresString(fields)
}

// elem is what a pointer, slice, array or map holds, however deep.
func elem(typ reflect.Type) reflect.Type {
	for {
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			typ = typ.Elem()
		default:
			return typ
		}
	}
}

// structWires lists a struct's wire fields, nested objects included; nil
// for a type that is not a struct or decides its own JSON (time.Time).
func structWires(typ reflect.Type) []wire {
	if typ.Kind() != reflect.Struct || typ.Implements(marshalerType) || reflect.PointerTo(typ).Implements(marshalerType) {
		return nil
	}
	fields := []wire{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		w, ok := wireOf(f.Name, f.IsExported(), f.Tag)
		if !ok {
			continue
		}
		w.Nested = structWires(elem(f.Type))
		fields = append(fields, w)
	}
	return fields
}

// normaliseDocCell writes a doc cell the way typeWires does, so spacing
// in the doc does not matter.
func normaliseDocCell(cell string) string {
	cell = strings.Join(strings.Fields(cell), " ")
	cell = strings.ReplaceAll(cell, "{ ", "{")
	return strings.ReplaceAll(cell, " }", "}")
}
