package workflows_test

// Replay tests over the frozen corpus in testdata/histories: one directory
// per version (v1, v2, …), each history recorded from a real run (real
// Temporal, worker, activities and provider test servers) by the
// end-to-end tests in ../tests/e2e through saveHistory, every file's
// checksum in testdata/histories/MANIFEST.sha256. Runs a released version
// recorded may still be open in production, so every history of every
// version must replay against the current workflow code, registered by the
// worker's own worker.RegisterWorkflows. A change that fails the replay is
// guarded with workflow.GetVersion (or, for a Pinned workflow, ships as a
// new build its old runs never reach: see RELIABILITY.md, "Changing a
// workflow"); the histories themselves are never edited or re-recorded
// (TestHistoryCorpusIsFrozen).
//
// Cut a new version after a release that changed what runs record, and
// commit it (docs/testing.md):
//
//	CRMFLOW_RECORD_HISTORIES=v2 go test ./tests/e2e/ -count=1
//	make seal-histories HISTORIES=v2
//	go test ./workflows/ -count=1
//
// To cover a new branch, end an end-to-end test with
// saveHistory(t, c, workflowID, "<workflow>_<branch>.json") (runs that exist
// only to record a branch go in tests/e2e/histories_test.go); the next
// version records it.
//
// Payloads are decoded with production's converters (internal/codec): the
// histories recorded through the sealing client hold payloads encrypted under
// config.DevMasterKey, the others plain JSON, which the codec passes through.

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path"
	"path/filepath"
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
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/testsupport/histories"
	crmworker "github.com/crmflow/crmflow/worker"
	"github.com/crmflow/crmflow/workflows"
)

// recordedHistory is one corpus file, parsed.
type recordedHistory struct {
	name    string // as the manifest lists it: v1/order_confirmation_confirmed.json
	file    string
	history *historypb.History
}

func (h recordedHistory) workflowType() string {
	return h.history.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
}

// loadHistories parses every history of every version.
func loadHistories(t *testing.T) []recordedHistory {
	t.Helper()
	dir, err := histories.Dir()
	require.NoError(t, err)
	names, err := histories.Files(dir)
	require.NoError(t, err)
	require.NotEmpty(t, names, "no recorded histories in testdata/histories")
	out := make([]recordedHistory, 0, len(names))
	for _, name := range names {
		file := filepath.Join(dir, filepath.FromSlash(name))
		f, err := os.Open(file)
		require.NoError(t, err)
		hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
		f.Close()
		require.NoError(t, err, name)
		require.NotEmpty(t, hist.GetEvents(), name)
		require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, hist.GetEvents()[0].GetEventType(), name)
		out = append(out, recordedHistory{name: name, file: file, history: hist})
	}
	return out
}

// TestHistoryCorpusIsFrozen: every committed history is exactly what its
// version sealed in MANIFEST.sha256 (none changed, none missing, none
// unlisted), and none lies outside a version directory.
func TestHistoryCorpusIsFrozen(t *testing.T) {
	dir, err := histories.Dir()
	require.NoError(t, err)
	problems, err := histories.Check(dir)
	require.NoError(t, err)
	require.Empty(t, problems, "the replay corpus differs from %s", histories.ManifestName)
	stray, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.Empty(t, stray, "histories live in testdata/histories/<version>/: record them into a new version (docs/testing.md)")
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

// registry records what worker.RegisterWorkflows registers, by type.
type registry map[string]any

func (r registry) RegisterWorkflow(fn any) { r[""] = fn }
func (r registry) RegisterWorkflowWithOptions(fn any, o workflow.RegisterOptions) {
	r[o.Name] = fn
}
func (r registry) RegisterDynamicWorkflow(fn any, _ workflow.DynamicRegisterOptions) {
	r["(dynamic)"] = fn
}

// registeredWorkflows returns what the worker registers, by workflow type.
func registeredWorkflows(t *testing.T) map[string]any {
	t.Helper()
	got := registry{}
	crmworker.RegisterWorkflows(got)
	require.NotEmpty(t, got, "worker.RegisterWorkflows registered no workflow")
	require.NotContains(t, got, "", "every workflow is registered under its contract name")
	return got
}

// workerReplayer is a replayer with production's converters and the
// worker's own registrations, so replay runs exactly what the worker runs.
func workerReplayer(t *testing.T) sdkworker.WorkflowReplayer {
	t.Helper()
	r := newReplayer(t, nil)
	crmworker.RegisterWorkflows(r)
	return r
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
	dc, _ := productionConverters(t)
	for _, h := range loadHistories(t) {
		t.Run(strings.TrimSuffix(h.name, ".json"), func(t *testing.T) {
			name := path.Base(h.name)
			require.Regexp(t, histories.FileName, name, "name histories <workflow>_<branch>.json")
			typ := h.workflowType()
			require.True(t, strings.HasPrefix(name, snakeCase(typ)+"_"),
				"a %s history is named %s_<branch>.json", typ, snakeCase(typ))
			r := workerReplayer(t)
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
		covered[h.workflowType()] = append(covered[h.workflowType()], h.name)
	}
	registered := registeredWorkflows(t)
	names := make([]string, 0, len(registered))
	for name := range registered {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		require.NotEmpty(t, covered[name], "workflow %s has no recorded history in testdata/histories: record one into the next version (see replay_test.go)", name)
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
	hist := loadHistory(t, "v1/order_confirmation_confirmed.json")

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
		if h.name == name {
			return h.history
		}
	}
	t.Fatalf("no history %s in testdata/histories", name)
	return nil
}

func b64(s string) string {
	out, _ := json.Marshal([]byte(s)) // encoding/json writes []byte as quoted base64
	return strings.Trim(string(out), `"`)
}
