package temporalserver_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/internal/temporalserver"
)

func dial(t *testing.T, s *temporalserver.Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddr(), Namespace: s.Namespace()})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// TestPersistsAcrossRestart proves what `crmflow dev` promises: a workflow
// started before a stop is still there, still running, after a restart on the
// same database file; and the search attributes are registered.
func TestPersistsAcrossRestart(t *testing.T) {
	dbFile := filepath.Join(t.TempDir(), "temporal.db")
	uiPort, err := temporalserver.FreePort("127.0.0.1")
	require.NoError(t, err)
	opts := temporalserver.Options{
		DatabaseFile:     dbFile,
		UIPort:           uiPort,
		SearchAttributes: map[string]enumspb.IndexedValueType{"CrmflowTestKey": enumspb.INDEXED_VALUE_TYPE_KEYWORD},
		LogLevel:         "error",
	}
	s, err := temporalserver.Start(opts)
	require.NoError(t, err)

	resp, err := http.Get("http://" + s.UIAddr() + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "Temporal UI answers")

	c := dial(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "restart-probe", TaskQueue: "nobody-polls"}, "SomeWorkflow")
	require.NoError(t, err)
	c.Close()
	s.Stop()
	s.Stop() // idempotent

	opts.FrontendPort = 0
	s2, err := temporalserver.Start(opts)
	require.NoError(t, err)
	defer s2.Stop()
	c2 := dial(t, s2)
	desc, err := c2.DescribeWorkflowExecution(ctx, "restart-probe", "")
	require.NoError(t, err)
	assert.Equal(t, run.GetRunID(), desc.GetWorkflowExecutionInfo().GetExecution().GetRunId())
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())

	sa, err := c2.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	require.NoError(t, err)
	assert.Equal(t, enumspb.INDEXED_VALUE_TYPE_KEYWORD, sa.GetCustomAttributes()["CrmflowTestKey"])
}

func TestPortInUseFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	start := time.Now()
	_, err = temporalserver.Start(temporalserver.Options{FrontendPort: l.Addr().(*net.TCPAddr).Port, LogLevel: "error"})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "already in use"), err.Error())
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestSearchAttributeAddedAtRunTime: the embedded server does not force a
// search-attribute cache refresh on every read (a database read per
// request), and a search attribute added to a running server still becomes
// usable, once the frontend's namespace cache has refreshed: started with,
// and found by a visibility query.
func TestSearchAttributeAddedAtRunTime(t *testing.T) {
	s, err := temporalserver.Start(temporalserver.Options{LogLevel: "error"})
	require.NoError(t, err)
	defer s.Stop()
	c := dial(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        s.Namespace(),
		SearchAttributes: map[string]enumspb.IndexedValueType{"CrmflowLateKey": enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	})
	require.NoError(t, err)

	key := temporal.NewSearchAttributeKeyKeyword("CrmflowLateKey")
	opts := client.StartWorkflowOptions{ID: "late-key", TaskQueue: "nobody-polls",
		TypedSearchAttributes: temporal.NewSearchAttributes(key.ValueSet("found"))}
	var startErr error
	require.Eventually(t, func() bool {
		_, startErr = c.ExecuteWorkflow(ctx, opts, "SomeWorkflow")
		return startErr == nil
	}, 45*time.Second, 200*time.Millisecond, "a start with the added attribute: %v", startErr)
	require.Eventually(t, func() bool {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: s.Namespace(), Query: `CrmflowLateKey = "found"`})
		return err == nil && len(resp.GetExecutions()) == 1
	}, 30*time.Second, 100*time.Millisecond, "the run is found by the added attribute")
}
