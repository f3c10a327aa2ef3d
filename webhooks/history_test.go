package webhooks_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/client"
)

var identity = regexp.MustCompile(`"identity":\s*"[^"]*"`)

// saveHistory writes a finished run's history to workflows/testdata when
// CRMFLOW_UPDATE_HISTORIES=1, so the workflows' replay tests check every
// later change to the workflow code against what real runs recorded.
func saveHistory(t *testing.T, c client.Client, workflowID, name string) {
	t.Helper()
	if os.Getenv("CRMFLOW_UPDATE_HISTORIES") != "1" {
		return
	}
	var hist historypb.History
	it := c.GetWorkflowHistory(context.Background(), workflowID, "", false, 0)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		hist.Events = append(hist.Events, ev)
	}
	out, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(&hist)
	require.NoError(t, err)
	// Worker identities name the machine; they do not matter to replay.
	out = identity.ReplaceAll(out, []byte(`"identity": "crmflow-test"`))
	require.NoError(t, os.WriteFile(filepath.Join("..", "workflows", "testdata", name), out, 0o644))
}
