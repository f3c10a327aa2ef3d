package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
)

var identity = regexp.MustCompile(`"identity":\s*"[^"]*"`)

// saveHistory writes the history of the workflow's latest run to
// workflows/testdata/name when CRMFLOW_UPDATE_HISTORIES=1, so the workflows'
// replay tests check every later change to the workflow code against what
// real runs recorded (see workflows/replay_test.go). Call it once the run is
// finished, or, for a long-lived entity, idle and waiting for its next
// signal: what it has done so far is what replay checks.
func saveHistory(t *testing.T, c client.Client, workflowID, name string) {
	t.Helper()
	saveRunHistory(t, c, workflowID, "", name)
}

// saveRunHistory is saveHistory for one run of the workflow ("" is the
// latest), e.g. the run that continued as new.
func saveRunHistory(t *testing.T, c client.Client, workflowID, runID, name string) {
	t.Helper()
	if os.Getenv("CRMFLOW_UPDATE_HISTORIES") != "1" {
		return
	}
	var hist historypb.History
	it := c.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	require.NotEmpty(t, hist.Events, "no history for %s", workflowID)
	out, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&hist)
	require.NoError(t, err)
	// Worker identities name the machine; they do not matter to replay.
	out = identity.ReplaceAll(out, []byte(`"identity": "crmflow-test"`))
	out = append(out, '\n')
	require.NoError(t, os.WriteFile(filepath.Join("..", "..", "workflows", "testdata", name), out, 0o644))
	t.Logf("recorded %s (%d events) in workflows/testdata/%s", workflowID, len(hist.Events), name)
}
