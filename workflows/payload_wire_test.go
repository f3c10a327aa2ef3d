package workflows_test

// The wire test. Replay alone does not look inside payloads: the SDK
// matches a recorded activity by its type and position, never by its
// input, so a renamed json tag replays cleanly while a task scheduled by
// the old code arrives with that field zeroed. This test decodes every
// payload of every recorded history into the Go type that reads it today
// and marshals it back: each field the history holds must come back under
// the same name with the same value.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/contract"
	crmworker "github.com/crmflow/crmflow/worker"
)

// signalPayloads and updatePayloads are the types that read each signal's
// payload and each update's input and result. A history holding a name
// not listed here fails the test, so a new signal or update is added here.
var (
	signalPayloads = map[string]reflect.Type{
		contract.PaymentSignal:                 reflect.TypeFor[contract.PaymentEvent](),
		contract.RefundSignal:                  reflect.TypeFor[contract.RefundEvent](),
		contract.StockLevelSignal:              reflect.TypeFor[contract.StockLevel](),
		contract.AliasDisableSignal:            reflect.TypeFor[contract.AliasCommand](),
		contract.AliasEnableSignal:             reflect.TypeFor[contract.AliasCommand](),
		contract.AliasDeleteSignal:             reflect.TypeFor[contract.AliasCommand](),
		contract.AliasClaimSignal:              reflect.TypeFor[contract.AliasCommand](),
		contract.KeyRotationTokenSeenSignal:    reflect.TypeFor[contract.KeyVersion](),
		contract.KeyRotationSecretProvenSignal: reflect.TypeFor[contract.KeyVersion](),
		contract.UserEventSignal:               reflect.TypeFor[contract.UserEvent](),
	}
	updatePayloads = map[string]struct{ input, result reflect.Type }{
		contract.DeadLetterDecisionUpdate:   {reflect.TypeFor[contract.DeadLetterDecision](), reflect.TypeFor[contract.DeadLetterDecisionResult]()},
		contract.KeyRotationTokenUpdate:     {reflect.TypeFor[contract.KeyRotationTokenRequest](), reflect.TypeFor[contract.KeyRotationToken]()},
		contract.KeyRotationSubmitKeyUpdate: {reflect.TypeFor[contract.SubmitKeyInput](), reflect.TypeFor[contract.SubmitKeyResult]()},
		contract.KeyRotationRevokedUpdate:   {reflect.TypeFor[contract.KeyRevokedInput](), nil},
		contract.KeyRotationTokenAckUpdate:  {reflect.TypeFor[contract.KeyRotationTokenRequest](), nil},
		contract.KeyRotationCancelUpdate:    {reflect.TypeFor[contract.KeyRevokedInput](), nil},
	}
)

// registeredActivities returns the signature of every activity worker.New
// registers, by activity type (the method name), recorded by a plugin as
// registeredWorkflows does. Every activity struct gets a value, so the
// provider queues (which skip nil structs) register theirs too.
func registeredActivities(t *testing.T) map[string]reflect.Type {
	t.Helper()
	got := map[string]reflect.Type{}
	plugin, err := temporal.NewSimplePlugin(temporal.SimplePluginOptions{
		Name: "crmflow-wire-registry",
		ConfigureWorker: func(_ context.Context, opts sdkworker.PluginConfigureWorkerOptions) error {
			opts.WorkerRegistryOptions.OnRegisterActivity = func(a any, _ activity.RegisterOptions) {
				typ := reflect.TypeOf(a)
				for i := range typ.NumMethod() {
					m := typ.Method(i)
					require.NotContains(t, got, m.Name, "two activities named %s", m.Name)
					// The receiver is the method type's first parameter.
					in := make([]reflect.Type, 0, m.Type.NumIn()-1)
					for j := 1; j < m.Type.NumIn(); j++ {
						in = append(in, m.Type.In(j))
					}
					out := make([]reflect.Type, 0, m.Type.NumOut())
					for j := range m.Type.NumOut() {
						out = append(out, m.Type.Out(j))
					}
					got[m.Name] = reflect.FuncOf(in, out, false)
				}
			}
			return nil
		},
	})
	require.NoError(t, err)
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1", Plugins: []client.Plugin{plugin}})
	require.NoError(t, err)
	defer c.Close()
	var acts crmworker.Activities
	v := reflect.ValueOf(&acts).Elem()
	for i := range v.NumField() {
		v.Field(i).Set(reflect.New(v.Field(i).Type().Elem()))
	}
	crmworker.New(c, crmworker.Options{TaskQueue: "crmflow-wire-registry", Activities: acts})
	require.NotEmpty(t, got, "worker.New registered no activity")
	return got
}

var (
	contextType         = reflect.TypeFor[context.Context]()
	workflowContextType = reflect.TypeFor[workflow.Context]()
	errorType           = reflect.TypeFor[error]()
)

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

// resultType is fn's result on the wire, nil if it returns only an error.
func resultType(fn reflect.Type) reflect.Type {
	for i := range fn.NumOut() {
		if r := fn.Out(i); r != errorType {
			return r
		}
	}
	return nil
}

// wireChecker checks one history's payloads.
type wireChecker struct {
	t       *testing.T
	dc      converter.DataConverter
	checked int
}

// payloads checks each payload against the type at its position.
func (w *wireChecker) payloads(where string, ps *commonpb.Payloads, types []reflect.Type) {
	w.t.Helper()
	for i, p := range ps.GetPayloads() {
		require.Less(w.t, i, len(types), "%s: %d payloads, but its Go signature takes %d", where, len(ps.GetPayloads()), len(types))
		w.payload(fmt.Sprintf("%s arg %d", where, i+1), p, types[i])
	}
}

// payload decodes p with production's converter into typ, marshals it
// again and requires everything the history recorded to come back.
func (w *wireChecker) payload(where string, p *commonpb.Payload, typ reflect.Type) {
	w.t.Helper()
	if p == nil {
		return
	}
	var raw json.RawMessage
	require.NoError(w.t, w.dc.FromPayload(p, &raw), where)
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	require.NotNil(w.t, typ, "%s: the history holds a payload %s, but its Go signature returns none", where, raw)
	v := reflect.New(typ)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	require.NoError(w.t, dec.Decode(v.Interface()), "%s: %s does not decode into %s", where, raw, typ)
	again, err := json.Marshal(v.Elem().Interface())
	require.NoError(w.t, err, where)
	if problem := missingFrom(decodeAny(w.t, raw), decodeAny(w.t, again), "$"); problem != "" {
		w.t.Errorf("%s (%s): %s\nrecorded: %s\nnow:      %s", where, typ, problem, raw, again)
	}
	w.checked++
}

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&v))
	return v
}

// missingFrom says what of recorded is not in now, by JSON path: a field
// gone or renamed, or a value changed. "" when now holds all of recorded
// (fields added since the recording are fine).
func missingFrom(recorded, now any, path string) string {
	switch r := recorded.(type) {
	case map[string]any:
		n, ok := now.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s was an object, is now %v", path, now)
		}
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			nv, ok := n[k]
			if !ok {
				return fmt.Sprintf("field %s.%s is no longer read back under that name", path, k)
			}
			if problem := missingFrom(r[k], nv, path+"."+k); problem != "" {
				return problem
			}
		}
		return ""
	case []any:
		n, ok := now.([]any)
		if !ok || len(n) != len(r) {
			return fmt.Sprintf("%s was %v, is now %v", path, recorded, now)
		}
		for i := range r {
			if problem := missingFrom(r[i], n[i], fmt.Sprintf("%s[%d]", path, i)); problem != "" {
				return problem
			}
		}
		return ""
	default:
		if !reflect.DeepEqual(recorded, now) {
			return fmt.Sprintf("%s was %v, is now %v", path, recorded, now)
		}
		return ""
	}
}

// TestRecordedPayloadsKeepTheirWireNames: every payload of every recorded
// history — workflow inputs and results, continue-as-new inputs, child
// workflow inputs, activity inputs and results, signals, update inputs and
// results — reads into today's Go type and writes back with every recorded
// field under its recorded name and value.
func TestRecordedPayloadsKeepTheirWireNames(t *testing.T) {
	workflowFns := registeredWorkflows(t)
	acts := registeredActivities(t)
	dc, _ := productionConverters(t)
	total := 0
	for _, h := range loadHistories(t) {
		name := filepath.Base(h.file)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			w := &wireChecker{t: t, dc: dc}
			wfType := h.workflowType()
			fn, ok := workflowFns[wfType]
			require.True(t, ok, "no registered workflow %s", wfType)
			wf := reflect.TypeOf(fn)
			scheduled := map[int64]string{}
			updates := map[string]string{}
			for _, e := range h.history.GetEvents() {
				where := fmt.Sprintf("event %d %s", e.GetEventId(), e.GetEventType())
				switch e.GetEventType() {
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
					w.payloads(where+" "+wfType, e.GetWorkflowExecutionStartedEventAttributes().GetInput(), argTypes(wf))
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
					for _, p := range e.GetWorkflowExecutionCompletedEventAttributes().GetResult().GetPayloads() {
						w.payload(where+" "+wfType, p, resultType(wf))
					}
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
					a := e.GetWorkflowExecutionContinuedAsNewEventAttributes()
					next, ok := workflowFns[a.GetWorkflowType().GetName()]
					require.True(t, ok, "%s: no registered workflow %s", where, a.GetWorkflowType().GetName())
					w.payloads(where, a.GetInput(), argTypes(reflect.TypeOf(next)))
				case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
					a := e.GetStartChildWorkflowExecutionInitiatedEventAttributes()
					child, ok := workflowFns[a.GetWorkflowType().GetName()]
					require.True(t, ok, "%s: no registered workflow %s", where, a.GetWorkflowType().GetName())
					w.payloads(where, a.GetInput(), argTypes(reflect.TypeOf(child)))
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
					a := e.GetActivityTaskScheduledEventAttributes()
					name := a.GetActivityType().GetName()
					sig, ok := acts[name]
					require.True(t, ok, "%s: the worker registers no activity %s", where, name)
					scheduled[e.GetEventId()] = name
					w.payloads(where+" "+name, a.GetInput(), argTypes(sig))
				case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
					a := e.GetActivityTaskCompletedEventAttributes()
					name := scheduled[a.GetScheduledEventId()]
					require.NotEmpty(t, name, "%s: completes an activity the history never scheduled", where)
					for _, p := range a.GetResult().GetPayloads() {
						w.payload(where+" "+name, p, resultType(acts[name]))
					}
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
					a := e.GetWorkflowExecutionSignaledEventAttributes()
					typ, ok := signalPayloads[a.GetSignalName()]
					require.True(t, ok, "%s: signal %q has no type in signalPayloads", where, a.GetSignalName())
					w.payloads(where+" "+a.GetSignalName(), a.GetInput(), []reflect.Type{typ})
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
					a := e.GetWorkflowExecutionUpdateAcceptedEventAttributes()
					input := a.GetAcceptedRequest().GetInput()
					types, ok := updatePayloads[input.GetName()]
					require.True(t, ok, "%s: update %q has no types in updatePayloads", where, input.GetName())
					updates[a.GetProtocolInstanceId()] = input.GetName()
					w.payloads(where+" "+input.GetName(), input.GetArgs(), []reflect.Type{types.input})
				case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
					a := e.GetWorkflowExecutionUpdateCompletedEventAttributes()
					name := updates[a.GetMeta().GetUpdateId()]
					require.NotEmpty(t, name, "%s: completes an update the history never accepted", where)
					for _, p := range a.GetOutcome().GetSuccess().GetPayloads() {
						w.payload(where+" "+name, p, updatePayloads[name].result)
					}
				}
			}
			total += w.checked
		})
	}
	require.NotZero(t, total, "no payload was checked")
	t.Logf("%d recorded payloads read back under their recorded names", total)
}

// TestWireCheckCatchesARename proves the check can fail: a recorded
// activity input read by a type whose tag was renamed loses the field.
func TestWireCheckCatchesARename(t *testing.T) {
	recorded := `{"OrderID":"o-1","Cents":1200}`
	type renamed struct {
		OrderID string `json:"order_id"`
		Cents   int64  `json:"Cents"`
	}
	var v renamed
	require.NoError(t, json.Unmarshal([]byte(recorded), &v))
	again, err := json.Marshal(v)
	require.NoError(t, err)
	require.Equal(t, "field $.OrderID is no longer read back under that name",
		missingFrom(decodeAny(t, []byte(recorded)), decodeAny(t, again), "$"))

	type same struct {
		OrderID string `json:"OrderID"`
		Cents   int64  `json:"Cents"`
		Added   string `json:"added"`
	}
	var s same
	require.NoError(t, json.Unmarshal([]byte(recorded), &s))
	again, err = json.Marshal(s)
	require.NoError(t, err)
	require.Empty(t, missingFrom(decodeAny(t, []byte(recorded)), decodeAny(t, again), "$"), "a field added since is fine")
}
