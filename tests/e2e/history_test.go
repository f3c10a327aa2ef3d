package e2e_test

import (
	"context"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/internal/testsupport/histories"
)

var identity = regexp.MustCompile(`"identity":\s*"[^"]*"`)

// recordVersion is the corpus version this run records into, from
// CRMFLOW_RECORD_HISTORIES (e.g. v2); "" records nothing.
func recordVersion(t *testing.T) string {
	t.Helper()
	if os.Getenv("CRMFLOW_UPDATE_HISTORIES") != "" {
		t.Fatal("CRMFLOW_UPDATE_HISTORIES is gone: committed histories are frozen and never refreshed; " +
			"record a new version with CRMFLOW_RECORD_HISTORIES=v<N> (docs/testing.md)")
	}
	return os.Getenv("CRMFLOW_RECORD_HISTORIES")
}

// saveHistory records the history of the workflow's latest run as
// workflows/testdata/histories/<version>/name when
// CRMFLOW_RECORD_HISTORIES=<version> names a version not sealed yet, so the
// workflows' replay tests check every later change to the workflow code
// against what real runs recorded (see workflows/replay_test.go). It never
// overwrites a file. Call it once the run is finished, or, for a long-lived
// entity, idle and waiting for its next signal: what it has done so far is
// what replay checks.
func saveHistory(t *testing.T, c client.Client, workflowID, name string) {
	t.Helper()
	saveRunHistory(t, c, workflowID, "", name)
}

// saveFinishedHistory is saveHistory for a bounded run the test has not
// waited for: it waits until the run has ended first.
func saveFinishedHistory(t *testing.T, c client.Client, workflowID, name string) {
	t.Helper()
	if recordVersion(t) == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.GetWorkflow(ctx, workflowID, "").Get(ctx, nil), "the run %s ends", workflowID)
	saveRunHistory(t, c, workflowID, "", name)
}

// saveRunHistory is saveHistory for one run of the workflow ("" is the
// latest), e.g. the run that continued as new.
func saveRunHistory(t *testing.T, c client.Client, workflowID, runID, name string) {
	t.Helper()
	version := recordVersion(t)
	if version == "" {
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
	dir, err := histories.Dir()
	require.NoError(t, err)
	rel, err := histories.Record(dir, version, name, out)
	require.NoError(t, err)
	t.Logf("recorded %s (%d events) in workflows/testdata/histories/%s", workflowID, len(hist.Events), rel)
}
