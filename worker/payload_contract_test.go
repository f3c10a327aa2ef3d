package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/worker"
)

// registrations is what worker.New registers on every queue of a process.
type registrations struct {
	// workflows by registered type name.
	workflows map[string]any
	// activities are the registered activity structs (or functions).
	activities []any
}

// registered builds the production workers on a client that never
// connects, with a plugin that records every registration. Every field of
// worker.Activities gets a value, so a provider queue (which skips nil
// structs) registers its activities too, and an activity struct or
// workflow added to the worker is covered without editing this file.
func registered(t *testing.T) registrations {
	t.Helper()
	got := registrations{workflows: map[string]any{}}
	plugin, err := temporal.NewSimplePlugin(temporal.SimplePluginOptions{
		Name: "crmflow-payload-contract",
		ConfigureWorker: func(_ context.Context, opts sdkworker.PluginConfigureWorkerOptions) error {
			opts.WorkerRegistryOptions.OnRegisterWorkflow = func(fn any, o workflow.RegisterOptions) {
				got.workflows[o.Name] = fn
			}
			opts.WorkerRegistryOptions.OnRegisterActivity = func(a any, _ activity.RegisterOptions) {
				got.activities = append(got.activities, a)
			}
			return nil
		},
	})
	require.NoError(t, err)
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1", Plugins: []client.Plugin{plugin}})
	require.NoError(t, err)
	defer c.Close()

	var acts worker.Activities
	v := reflect.ValueOf(&acts).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		require.Equal(t, reflect.Pointer, f.Kind(), "worker.Activities.%s is a pointer to an activity struct", v.Type().Field(i).Name)
		f.Set(reflect.New(f.Type().Elem()))
	}
	worker.New(c, worker.Options{TaskQueue: "crmflow-payload-contract", Activities: acts})
	require.NotEmpty(t, got.workflows, "worker.New registered no workflow")
	require.NotEmpty(t, got.activities, "worker.New registered no activity")
	return got
}

var (
	contextType         = reflect.TypeFor[context.Context]()
	workflowContextType = reflect.TypeFor[workflow.Context]()
	errorType           = reflect.TypeFor[error]()
	marshalerType       = reflect.TypeFor[json.Marshaler]()
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
)

// payloadTypes lists the types fn takes and returns on the wire, each with
// a label naming where it is used: every parameter after the context and
// every result but the error.
func payloadTypes(label string, fn reflect.Type, skipFirst int) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	n := 0
	for i := skipFirst; i < fn.NumIn(); i++ {
		if fn.In(i) == contextType || fn.In(i) == workflowContextType {
			continue
		}
		n++
		out[fmt.Sprintf("%s input %d", label, n)] = fn.In(i)
	}
	n = 0
	for i := range fn.NumOut() {
		if fn.Out(i) == errorType {
			continue
		}
		n++
		out[fmt.Sprintf("%s result %d", label, n)] = fn.Out(i)
	}
	return out
}

// registeredPayloads lists every workflow's and activity's input and
// result types, labelled.
func registeredPayloads(t *testing.T) map[string]reflect.Type {
	t.Helper()
	reg := registered(t)
	out := map[string]reflect.Type{}
	for name, fn := range reg.workflows {
		for label, typ := range payloadTypes("workflow "+name, reflect.TypeOf(fn), 0) {
			out[label] = typ
		}
	}
	for _, a := range reg.activities {
		typ := reflect.TypeOf(a)
		if typ.Kind() == reflect.Func {
			for label, p := range payloadTypes("activity "+typ.String(), typ, 0) {
				out[label] = p
			}
			continue
		}
		// A struct's exported methods are its activities; the receiver is
		// the method type's first parameter.
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			for label, p := range payloadTypes(fmt.Sprintf("activity %s.%s", typ.Elem().Name(), m.Name), m.Type, 1) {
				out[label] = p
			}
		}
	}
	return out
}

// untaggedFields walks typ (through pointers, slices, arrays, maps and
// nested structs) and names every exported struct field without a json
// tag, as "Type.Field". A type with its own JSON methods (time.Time,
// contract.Duration) decides its shape itself and is not walked.
func untaggedFields(typ reflect.Type, seen map[reflect.Type]bool) []string {
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return untaggedFields(typ.Elem(), seen)
	case reflect.Map:
		return append(untaggedFields(typ.Key(), seen), untaggedFields(typ.Elem(), seen)...)
	case reflect.Struct:
	default:
		return nil
	}
	if seen[typ] || ownsJSON(typ) {
		return nil
	}
	seen[typ] = true
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() && !f.Anonymous {
			continue // encoding/json never sees it
		}
		if _, ok := f.Tag.Lookup("json"); !ok {
			out = append(out, fmt.Sprintf("%s.%s", typeName(typ), f.Name))
		}
		out = append(out, untaggedFields(f.Type, seen)...)
	}
	return out
}

// ownsJSON reports a type that marshals and unmarshals itself.
func ownsJSON(typ reflect.Type) bool {
	p := reflect.PointerTo(typ)
	return (typ.Implements(marshalerType) || p.Implements(marshalerType)) && p.Implements(unmarshalerType)
}

// typeName is typ's package-qualified name, or its literal for an unnamed
// struct.
func typeName(typ reflect.Type) string {
	if typ.Name() == "" {
		return typ.String()
	}
	return typ.PkgPath()[strings.LastIndex(typ.PkgPath(), "/")+1:] + "." + typ.Name()
}

// TestEveryPayloadFieldHasAJSONTag: every field of every registered
// workflow's and activity's input and result, however deep, names its wire
// name in a json tag. Without one, encoding/json uses the Go field name, so
// renaming the field in Go silently renames it on the wire and zeroes it
// for runs, tasks and histories written by the old code.
func TestEveryPayloadFieldHasAJSONTag(t *testing.T) {
	payloads := registeredPayloads(t)
	labels := make([]string, 0, len(payloads))
	for label := range payloads {
		labels = append(labels, label)
	}
	sort.Strings(labels)
	seen := map[reflect.Type]bool{}
	for _, label := range labels {
		for _, field := range untaggedFields(payloads[label], seen) {
			t.Errorf("%s has no json tag (reached from %s): add `json:\"<wire name>\"`, the Go field name if the type is already on the wire", field, label)
		}
	}
}

// TestPayloadWalkCoversEveryRegistration: the walk above sees the
// workflows, activity structs and activities the worker registers, and
// reports an untagged field however deep it sits.
func TestPayloadWalkCoversEveryRegistration(t *testing.T) {
	reg := registered(t)
	for _, name := range []string{"OrderConfirmation", "ReferralReward", "LowStockAlert", "AliasLifecycle", "KeyRotation",
		"InventoryScan", "DataRetention", "StripeReconcile", "OrderRefund"} {
		assert.Contains(t, reg.workflows, name)
	}
	var structs []string
	for _, a := range reg.activities {
		structs = append(structs, reflect.TypeOf(a).String())
	}
	// One main-queue and one provider-queue struct, as a sample of each.
	assert.Contains(t, structs, reflect.TypeFor[*activities.OrderActivities]().String())
	assert.Contains(t, structs, reflect.TypeFor[*activities.KnockActivities]().String())
	payloads := registeredPayloads(t)
	for _, label := range []string{"activity KnockActivities.Notify input 1", "activity KnockActivities.Notify result 1",
		"workflow OrderConfirmation input 1", "workflow OrderConfirmation result 1"} {
		_, ok := payloads[label]
		assert.True(t, ok, "no payload %q", label)
	}

	type leaf struct {
		Tagged   string `json:"tagged"`
		Untagged string
	}
	type nested struct {
		ByKey map[string][]*leaf `json:"by_key"`
		Plain int
		_     int // unexported fields are not on the wire
	}
	got := untaggedFields(reflect.TypeFor[*nested](), map[reflect.Type]bool{})
	assert.ElementsMatch(t, []string{"worker_test.nested.Plain", "worker_test.leaf.Untagged"}, got)
}

// TestWorkflowInputDurationsReadStrings: every time.Duration field of a
// registered workflow's input reads from a duration string ("PT1H") as
// well as from nanoseconds, so a client in another language can write
// durations as text. A new input with a duration gets the same
// UnmarshalJSON as contract.OrderConfirmationInput; a duration nested
// deeper is refused here until the decoding reaches it too.
func TestWorkflowInputDurationsReadStrings(t *testing.T) {
	durationType := reflect.TypeFor[time.Duration]()
	checked := 0
	for name, fn := range registered(t).workflows {
		for _, in := range argTypes(reflect.TypeOf(fn)) {
			typ := in
			for typ.Kind() == reflect.Pointer {
				typ = typ.Elem()
			}
			if typ.Kind() != reflect.Struct {
				continue
			}
			for i := range typ.NumField() {
				f := typ.Field(i)
				if f.Type != durationType {
					assert.Empty(t, nestedDurations(f.Type, map[reflect.Type]bool{}),
						"%s input %s.%s holds a duration its UnmarshalJSON does not read from a string", name, typ.Name(), f.Name)
					continue
				}
				jsonName, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				for _, form := range []string{`"PT1H"`, `"1h"`, `3600000000000`} {
					v := reflect.New(typ)
					err := json.Unmarshal([]byte(fmt.Sprintf(`{%q:%s}`, jsonName, form)), v.Interface())
					if assert.NoError(t, err, "%s input %s.%s from %s", name, typ.Name(), f.Name, form) {
						assert.Equal(t, time.Hour, time.Duration(v.Elem().Field(i).Int()), "%s input %s.%s from %s", name, typ.Name(), f.Name, form)
					}
				}
				checked++
			}
		}
	}
	assert.GreaterOrEqual(t, checked, 10, "the inputs' durations were found")
}

// nestedDurations names the time.Duration fields inside typ, however deep.
func nestedDurations(typ reflect.Type, seen map[reflect.Type]bool) []string {
	switch typ.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return nestedDurations(typ.Elem(), seen)
	case reflect.Struct:
	default:
		return nil
	}
	if seen[typ] || ownsJSON(typ) {
		return nil
	}
	seen[typ] = true
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type == reflect.TypeFor[time.Duration]() {
			out = append(out, typ.Name()+"."+f.Name)
			continue
		}
		out = append(out, nestedDurations(f.Type, seen)...)
	}
	return out
}

// argTypes are fn's parameters on the wire (all but the context).
func argTypes(fn reflect.Type) []reflect.Type {
	var out []reflect.Type
	for i := range fn.NumIn() {
		if p := fn.In(i); p != contextType && p != workflowContextType {
			out = append(out, p)
		}
	}
	return out
}
