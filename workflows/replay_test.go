package workflows_test

// Replay tests. Every testdata/<workflow>_<branch>.json is the history of a
// real run (real Temporal, worker, activities and provider test servers),
// recorded by the end-to-end tests in ../webhooks through saveHistory.
// Replaying them against the current workflow code fails on any change that
// would break runs already in flight; guard such a change with
// workflow.GetVersion instead of refreshing the histories to make it pass.
//
// Refresh the histories after an intended change to what runs record, and
// commit the rewritten files:
//
//	CRMFLOW_UPDATE_HISTORIES=1 go test ./webhooks/ -count=1
//	go test ./workflows/ -count=1
//
// To cover a new branch, end an end-to-end test with
// saveHistory(t, c, workflowID, "<workflow>_<branch>.json") (runs that exist
// only to record a branch go in webhooks/histories_test.go) and run the
// first command: the replay test finds every file here by itself.
//
// Payloads are decoded with production's converters (internal/codec): the
// histories recorded through the sealing client hold payloads encrypted under
// config.DevMasterKey, the others plain JSON, which the codec passes through.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
	crmworker "github.com/crmflow/crmflow/worker"
	"github.com/crmflow/crmflow/workflows"
)

// historyName is the file name every recorded history follows.
var historyName = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)+\.json$`)

// recordedHistory is one testdata file, parsed.
type recordedHistory struct {
	file    string
	history *historypb.History
}

func (h recordedHistory) workflowType() string {
	return h.history.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
}

// loadHistories parses every history in testdata.
func loadHistories(t *testing.T) []recordedHistory {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories in testdata")
	out := make([]recordedHistory, 0, len(files))
	for _, file := range files {
		f, err := os.Open(file)
		require.NoError(t, err)
		hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		require.NoError(t, err, file)
		require.NotEmpty(t, hist.GetEvents(), file)
		require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, hist.GetEvents()[0].GetEventType(), file)
		out = append(out, recordedHistory{file: file, history: hist})
	}
	return out
}

// productionConverters are the data and failure converters worker.Dial
// gives every client and worker, keyed with the master key the recording
// fixture used.
func productionConverters(t *testing.T) (converter.DataConverter, converter.FailureConverter) {
	t.Helper()
	keys, err := credentials.NewKeyring(config.DevMasterKey)
	require.NoError(t, err)
	dc := codec.NewDataConverter(keys)
	return dc, codec.NewFailureConverter(dc)
}

// registeredWorkflows returns what worker.New registers, by workflow type:
// a plugin on a client that never connects records each registration, so
// the replayer runs exactly the functions the production worker runs, and a
// workflow added to the worker is seen here without editing this file.
func registeredWorkflows(t *testing.T) map[string]any {
	t.Helper()
	got := map[string]any{}
	plugin, err := temporal.NewSimplePlugin(temporal.SimplePluginOptions{
		Name: "crmflow-replay-registry",
		ConfigureWorker: func(_ context.Context, opts sdkworker.PluginConfigureWorkerOptions) error {
			opts.WorkerRegistryOptions.OnRegisterWorkflow = func(fn any, o workflow.RegisterOptions) {
				require.NotEmpty(t, o.Name, "every workflow is registered under its contract name")
				got[o.Name] = fn
			}
			return nil
		},
	})
	require.NoError(t, err)
	// Lazy: nothing dials, and the worker below is never started.
	c, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1", Plugins: []client.Plugin{plugin}})
	require.NoError(t, err)
	defer c.Close()
	crmworker.New(c, crmworker.Options{TaskQueue: "crmflow-replay-registry"})
	require.NotEmpty(t, got, "worker.New registered no workflow")
	return got
}

// newReplayer registers fns (workflow type → function) on a replayer with
// production's converters.
func newReplayer(t *testing.T, fns map[string]any) sdkworker.WorkflowReplayer {
	t.Helper()
	dc, fc := productionConverters(t)
	r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{DataConverter: dc, FailureConverter: fc})
	require.NoError(t, err)
	for name, fn := range fns {
		r.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: name})
	}
	return r
}

// snakeCase turns a workflow type into its file-name prefix:
// OrderConfirmation → order_confirmation.
func snakeCase(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestReplayRecordedHistories replays every recorded history against the
// workflow code the worker registers, and checks that a completed run
// replays to the same result it recorded.
func TestReplayRecordedHistories(t *testing.T) {
	fns := registeredWorkflows(t)
	dc, _ := productionConverters(t)
	for _, h := range loadHistories(t) {
		name := filepath.Base(h.file)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			require.Regexp(t, historyName, name, "name histories <workflow>_<branch>.json")
			typ := h.workflowType()
			require.True(t, strings.HasPrefix(name, snakeCase(typ)+"_"),
				"a %s history is named %s_<branch>.json", typ, snakeCase(typ))
			r := newReplayer(t, fns)
			require.NoError(t, r.ReplayWorkflowHistory(nil, h.history))

			events := h.history.GetEvents()
			last := events[len(events)-1]
			if last.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
				return // open entities, continued-as-new and failed runs have no result to compare
			}
			var want, got json.RawMessage
			require.NoError(t, dc.FromPayloads(last.GetWorkflowExecutionCompletedEventAttributes().GetResult(), &want))
			results, ok := r.(interface{ GetWorkflowResult(string, any) error })
			require.True(t, ok, "the SDK's replayer keeps the replayed result")
			require.NoError(t, results.GetWorkflowResult("", &got))
			require.JSONEq(t, string(want), string(got), "the replayed run ends as the recorded one did")
		})
	}
}

// TestEveryWorkflowHasAHistory: a workflow the worker registers with no
// recorded history could change without any replay noticing.
func TestEveryWorkflowHasAHistory(t *testing.T) {
	covered := map[string][]string{}
	for _, h := range loadHistories(t) {
		covered[h.workflowType()] = append(covered[h.workflowType()], filepath.Base(h.file))
	}
	registered := registeredWorkflows(t)
	names := make([]string, 0, len(registered))
	for name := range registered {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		require.NotEmpty(t, covered[name], "workflow %s has no recorded history in testdata: record one (see replay_test.go)", name)
		t.Logf("%s: %d histories", name, len(covered[name]))
	}
	for typ, files := range covered {
		require.Contains(t, registered, typ, "%v record workflow type %s, which the worker no longer registers", files, typ)
	}
}

// TestRecordedHistoriesExerciseTheCodec: at least some histories hold
// payloads sealed by the codec, so replay proves production's converter
// still opens what earlier runs wrote (a codec change that cannot fails).
func TestRecordedHistoriesExerciseTheCodec(t *testing.T) {
	sealed := 0
	for _, h := range loadHistories(t) {
		raw, err := os.ReadFile(h.file)
		require.NoError(t, err)
		// Metadata values are base64 in the JSON form of a history.
		sealed += bytes.Count(raw, []byte(`"`+b64(codec.MetadataEncodingEncrypted)+`"`))
	}
	require.NotZero(t, sealed, "no recorded history holds an encrypted payload")
	t.Logf("%d sealed payloads across the histories", sealed)
}

// TestReplayCatchesNonDeterminism proves the replay test can fail: the
// confirmed order's history replayed against a changed copy of
// OrderConfirmation (a new first step, unguarded) is a non-determinism
// error, while the same change behind workflow.GetVersion replays cleanly.
func TestReplayCatchesNonDeterminism(t *testing.T) {
	hist := loadHistory(t, "order_confirmation_confirmed.json")

	unguarded := func(ctx workflow.Context, in contract.OrderConfirmationInput) (*contract.OrderConfirmationResult, error) {
		if err := workflow.Sleep(ctx, time.Minute); err != nil {
			return nil, err
		}
		return workflows.OrderConfirmation(ctx, in)
	}
	r := newReplayer(t, map[string]any{contract.OrderConfirmationType: unguarded})
	err := r.ReplayWorkflowHistory(log.NewStructuredLogger(slog.New(slog.DiscardHandler)), hist)
	require.Error(t, err, "a new unguarded step must not replay")
	// TMPRL1100 is the SDK's code for every kind of non-determinism.
	require.Contains(t, err.Error(), "[TMPRL1100]")

	guarded := func(ctx workflow.Context, in contract.OrderConfirmationInput) (*contract.OrderConfirmationResult, error) {
		if workflow.GetVersion(ctx, "pause-before-loading", workflow.DefaultVersion, 1) == 1 {
			if err := workflow.Sleep(ctx, time.Minute); err != nil {
				return nil, err
			}
		}
		return workflows.OrderConfirmation(ctx, in)
	}
	r = newReplayer(t, map[string]any{contract.OrderConfirmationType: guarded})
	require.NoError(t, r.ReplayWorkflowHistory(nil, hist), "the same change behind GetVersion replays")
}

func loadHistory(t *testing.T, name string) *historypb.History {
	t.Helper()
	for _, h := range loadHistories(t) {
		if filepath.Base(h.file) == name {
			return h.history
		}
	}
	t.Fatalf("no history %s in testdata", name)
	return nil
}

func b64(s string) string {
	out, _ := json.Marshal([]byte(s)) // encoding/json writes []byte as quoted base64
	return strings.Trim(string(out), `"`)
}
