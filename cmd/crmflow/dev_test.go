package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/devstack"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/temporalserver"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// syncBuffer collects the banner written from another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type devPorts struct{ pg, temporal, ui, http int }

func freePorts(t *testing.T) devPorts {
	t.Helper()
	var p [4]int
	for i := range p {
		port, err := temporalserver.FreePort("127.0.0.1")
		require.NoError(t, err)
		p[i] = port
	}
	return devPorts{p[0], p[1], p[2], p[3]}
}

// devConfig is the dev stack's configuration on the given data directory
// and ports, plus any extra CRMFLOW_* settings.
func devConfig(t *testing.T, dataDir string, p devPorts, extra ...string) *config.Config {
	t.Helper()
	environ := []string{
		"CRMFLOW_DEV_DATA_DIR=" + dataDir,
		"CRMFLOW_DEV_POSTGRES_PORT=" + strconv.Itoa(p.pg),
		"CRMFLOW_TEMPORAL_ADDRESS=127.0.0.1:" + strconv.Itoa(p.temporal),
		"CRMFLOW_DEV_UI_ADDR=127.0.0.1:" + strconv.Itoa(p.ui),
		"CRMFLOW_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(p.http),
		"CRMFLOW_LOG_LEVEL=warn",
	}
	cfg, err := config.Load(config.LoadOptions{Dev: true, Environ: append(environ, extra...)})
	require.NoError(t, err)
	return cfg
}

// startDev runs `crmflow dev` in-process and waits until its banner says it
// is up; the returned stop function cancels it and waits for a clean exit.
func startDev(t *testing.T, cfg *config.Config) (banner *syncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	banner = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- runDev(ctx, cfg, banner) }()
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(banner.String(), "crmflow dev is up") {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("crmflow dev exited before it was up: %v", err)
		case <-deadline:
			cancel()
			t.Fatal("crmflow dev not up within two minutes")
		case <-time.After(50 * time.Millisecond):
		}
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("crmflow dev did not stop cleanly: %v", err)
				}
			case <-time.After(time.Minute):
				t.Error("crmflow dev did not stop within a minute")
			}
		})
	}
	t.Cleanup(stop)
	return banner, stop
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func assertPortsFree(t *testing.T, p devPorts) {
	t.Helper()
	for _, port := range []int{p.pg, p.temporal, p.ui, p.http} {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if assert.NoError(t, err, "port %d still taken after stop", port) {
			l.Close()
		}
	}
}

// TestDevStackRunsStopsAndResumes is the foundation's promise end to end:
// `crmflow dev` brings up PostgreSQL, Temporal and its UI, the worker and the
// HTTP server from nothing; a second one refuses to start; stopping leaves no
// port behind; and a restart finds the earlier workflow still running.
func TestDevStackRunsStopsAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	dataDir := t.TempDir()
	ports := freePorts(t)
	cfg := devConfig(t, dataDir, ports)
	banner, stop := startDev(t, cfg)
	httpBase := "http://" + cfg.HTTPAddr

	code, body := get(t, httpBase+"/readyz")
	assert.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"postgres":{"status":"ok"`)
	assert.Contains(t, body, `"temporal":{"status":"ok"`)
	assert.Contains(t, body, `"console_mode":["knock","resend","simplelogin","stripe"]`)
	// Each provider's activity queue is polled, none paused.
	for _, p := range []string{"stripe", "knock", "simplelogin", "resend"} {
		assert.Contains(t, body, `{"provider":"`+p+`","task_queue":"crmflow-`+p+`","paused":false,`)
	}
	code, _ = get(t, httpBase+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	code, _ = get(t, "http://"+cfg.Dev.UIAddr+"/")
	assert.Equal(t, http.StatusOK, code, "Temporal UI answers")
	code, body = get(t, httpBase+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	for _, metric := range []string{"go_goroutines", "crmflow_http_requests_total", "temporal_", "crmflow_provider_queue_paused"} {
		assert.Contains(t, body, metric)
	}
	for _, want := range []string{cfg.Dev.UIAddr, config.DevAPIToken, "Operator token     dev: " + config.DevOperatorToken,
		"Console mode       knock, resend, simplelogin, stripe", "Worker Versioning  off"} {
		assert.Contains(t, banner.String(), want)
	}

	// The codec endpoint encodes for an operator token holder, and for the
	// embedded UI's origin in dev (wherever the UI listens); a service token
	// gets 403, anyone else 401.
	encode := func(origin, token string) int {
		req, err := http.NewRequest(http.MethodPost, httpBase+"/codec/encode",
			strings.NewReader(`{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"InNlY3JldCI="}]}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, encode("", ""))
	assert.Equal(t, http.StatusUnauthorized, encode("http://evil.example", ""))
	assert.Equal(t, http.StatusForbidden, encode("", config.DevAPIToken))
	assert.Equal(t, http.StatusOK, encode("", config.DevOperatorToken))
	assert.Equal(t, http.StatusOK, encode("http://"+cfg.Dev.UIAddr, ""))
	assert.Equal(t, http.StatusUnauthorized, encode("http://127.0.0.1:1", ""), "another local origin is nobody")

	// A second dev stack on the same data dir refuses before starting anything.
	other := devConfig(t, dataDir, freePorts(t))
	err := runDev(context.Background(), other, io.Discard)
	require.ErrorIs(t, err, devstack.ErrAlreadyRunning)
	code, _ = get(t, httpBase+"/readyz")
	assert.Equal(t, http.StatusOK, code, "the first stack is unharmed")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// `crmflow demo` drives the order confirmation through signed webhooks
	// and the start API against this very stack.
	st, err := store.Open(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/crmflow?sslmode=disable", ports.pg))
	require.NoError(t, err)
	var demoOut bytes.Buffer
	require.NoError(t, runDemo(ctx, cfg, st, &demoOut, httpBase), demoOut.String())
	st.Close()
	assert.Contains(t, demoOut.String(), "confirmed")

	c, err := client.Dial(client.Options{HostPort: cfg.Temporal.Address, Namespace: cfg.Temporal.Namespace})
	require.NoError(t, err)
	sa, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: cfg.Temporal.Namespace})
	require.NoError(t, err)
	for name, typ := range contract.SearchAttributes() {
		assert.Equal(t, typ, sa.GetCustomAttributes()[name], name)
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: "dev-restart-probe", TaskQueue: "dev-restart-probe",
	}, "RestartProbe")
	require.NoError(t, err)
	c.Close()

	stop()
	assertPortsFree(t, ports)

	startDev(t, cfg)
	c, err = client.Dial(client.Options{HostPort: cfg.Temporal.Address, Namespace: cfg.Temporal.Namespace})
	require.NoError(t, err)
	defer c.Close()
	// The schedules were created at the first start and brought up to date
	// (not duplicated) at this one.
	for _, id := range []string{"inventory-scan", "data-retention", "key-rotation-crmflow"} {
		_, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		assert.NoError(t, err, "schedule %s", id)
	}
	_, err = c.ScheduleClient().GetHandle(ctx, "key-rotation-stripe").Describe(ctx)
	assert.Error(t, err, "no rotation schedule for a provider with no key")
	desc, err := c.DescribeWorkflowExecution(ctx, "dev-restart-probe", "")
	require.NoError(t, err)
	assert.Equal(t, run.GetRunID(), desc.GetWorkflowExecutionInfo().GetExecution().GetRunId())
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, desc.GetWorkflowExecutionInfo().GetStatus())
}

// TestConfigCommandNamesBadKey checks `crmflow config` exits non-zero naming
// the env var that is wrong.
func TestConfigCommandNamesBadKey(t *testing.T) {
	t.Setenv("CRMFLOW_HTTP_ADDR", "nonsense")
	t.Setenv("CRMFLOW_DATABASE_URL", "postgres://u:pw@h/d")
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"config"})
	err := cmd.Execute()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "CRMFLOW_HTTP_ADDR")
	assert.NotContains(t, out.String()+err.Error(), ":pw@")
}

func TestConfigCommandPrintsRedacted(t *testing.T) {
	t.Setenv("CRMFLOW_DATABASE_URL", "postgres://u:pw@h/d")
	t.Setenv("CRMFLOW_MASTER_KEY", testenv.MasterKey)
	t.Setenv("CRMFLOW_STRIPE_SECRET_KEY", "sk_test_hidden")
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"config"})
	require.NoError(t, cmd.Execute())
	assert.Contains(t, out.String(), "secret_key: '[redacted]'")
	assert.NotContains(t, out.String(), "sk_test_hidden")
	assert.NotContains(t, out.String(), ":pw@")
	assert.Contains(t, out.String(), "# console mode (no API key): knock, resend, simplelogin")
}
