package e2e_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/doctor"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/doctortest"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
)

// readyzServer serves /readyz with crmflow doctor's checks behind
// ?verbose=1, wired as run.go wires them, for a setup whose Knock key is
// knockKey. runs counts the doctor's runs.
func readyzServer(t *testing.T, knockKey string) (*httptest.Server, *atomic.Int64) {
	ns, tc := doctortest.Namespace(t, true)
	peers := doctortest.NewPeers(t)
	dbURL := testenv.DatabaseURL(t)
	st, err := store.Open(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(st.Close)
	cfg, err := config.Load(config.LoadOptions{Environ: []string{
		"CRMFLOW_DATABASE_URL=" + dbURL,
		"CRMFLOW_MASTER_KEY=" + testenv.MasterKey,
		"CRMFLOW_TEMPORAL_ADDRESS=" + testenv.Temporal(t).FrontendAddr(),
		"CRMFLOW_TEMPORAL_NAMESPACE=" + ns,
		"CRMFLOW_KNOCK_API_KEY=" + knockKey,
		"CRMFLOW_KNOCK_API_URL=" + peers.Knock.URL,
		"CRMFLOW_SIMPLELOGIN_API_URL=" + peers.SimpleLogin.URL,
		"CRMFLOW_RESEND_API_URL=" + peers.Resend.URL,
	}})
	require.NoError(t, err)
	keys, err := credentials.KeyringOf(cfg.MasterKeys())
	require.NoError(t, err)
	creds := credentials.NewStore(st, keys, credentials.Options{})
	require.NoError(t, creds.SeedAll(context.Background(), cfg.ConfiguredKeys()))
	require.NoError(t, creds.SeedTokens(context.Background(), []string{apiToken}, map[string]string{operatorName: operatorToken}))
	doctortest.Eventually(t, "create schedules", func(ctx context.Context) error { return worker.EnsureSchedules(ctx, tc, cfg, "") })

	checker := &doctor.Checker{Config: cfg, DatabaseURL: dbURL, Store: st, Temporal: tc, Credentials: creds, Timeout: 5 * time.Second}
	var runs atomic.Int64
	mux := http.NewServeMux()
	api.NewOps(api.OpsDeps{
		Registry: prometheus.NewRegistry(),
		Auth:     creds,
		Checks: []api.Check{
			{Name: "postgres", Probe: st.Ping},
			{Name: "temporal", Probe: func(ctx context.Context) error {
				_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
				return err
			}},
		},
		Doctor: doctor.Cached(func(ctx context.Context) []doctor.Result {
			runs.Add(1)
			return checker.Run(ctx)
		}, time.Minute),
	}).Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs, &runs
}

type readyzBody struct {
	Status string                     `json:"status"`
	Checks map[string]json.RawMessage `json:"checks"`
	Doctor []doctor.Result            `json:"doctor"`
}

func getReadyz(t *testing.T, url string) (int, readyzBody, string) {
	token := ""
	if strings.Contains(url, "verbose") {
		token = operatorToken // verbose readiness is for operators
	}
	return getReadyzAs(t, url, token)
}

// getReadyzAs gets url with token as the bearer token ("" for none).
func getReadyzAs(t *testing.T, url, token string) (int, readyzBody, string) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var body readyzBody
	require.NoError(t, json.Unmarshal(raw, &body), string(raw))
	return resp.StatusCode, body, string(raw)
}

// TestReadyzVerbose: plain /readyz stays cheap (no doctor run, no doctor
// field); ?verbose=1 adds every doctor check to the JSON.
func TestReadyzVerbose(t *testing.T) {
	hs, runs := readyzServer(t, doctortest.KnockKey)

	code, body, raw := getReadyz(t, hs.URL+"/readyz")
	assert.Equal(t, http.StatusOK, code, raw)
	assert.Equal(t, "ready", body.Status)
	assert.NotContains(t, raw, `"doctor"`)
	assert.Zero(t, runs.Load(), "plain /readyz does not run the doctor")

	code, body, raw = getReadyz(t, hs.URL+"/readyz?verbose=1")
	assert.Equal(t, http.StatusOK, code, raw)
	assert.Equal(t, "ready", body.Status)
	assert.Contains(t, body.Checks, "postgres")
	var names []string
	for _, r := range body.Doctor {
		names = append(names, r.Name)
		assert.True(t, r.OK, "%s: %s", r.Name, r.Detail)
	}
	assert.Equal(t, []string{"config", "postgres", "temporal", "search-attributes", "schedules", "stripe", "knock", "simplelogin", "resend", "tokens"}, names)
	assert.Contains(t, raw, `{"name":"knock","ok":true,"detail":"key accepted (GET /v1/users/crmflow-key-check); key from the credential store (knock/api_key@v1)"}`)
	assert.NotContains(t, raw, doctortest.KnockKey)

	_, _, _ = getReadyz(t, hs.URL+"/readyz?verbose=1")
	assert.Equal(t, int64(1), runs.Load(), "a second verbose call within the cache TTL reuses the first run")
}

// TestReadyzVerboseFailure: a failing doctor check makes the verbose answer
// 503 "not ready" with the check's detail and fix, while plain /readyz,
// whose dependencies answer, stays 200.
func TestReadyzVerboseFailure(t *testing.T) {
	hs, _ := readyzServer(t, "sk_test_rejected_knock_key")

	code, _, raw := getReadyz(t, hs.URL+"/readyz")
	assert.Equal(t, http.StatusOK, code, raw)

	code, body, raw := getReadyz(t, hs.URL+"/readyz?verbose=1")
	assert.Equal(t, http.StatusServiceUnavailable, code, raw)
	assert.Equal(t, "not ready", body.Status)
	var knock doctor.Result
	for _, r := range body.Doctor {
		if r.Name == "knock" {
			knock = r
		} else {
			assert.True(t, r.OK, "%s: %s", r.Name, r.Detail)
		}
	}
	assert.Equal(t, doctor.Result{
		Name:   "knock",
		Detail: "401 Unauthorized: Knock rejects the key in the credential store (knock/api_key@v1) (authentication_required)",
		Fix:    "rotate it: `crmflow rotation start knock`, then pipe a working key into `crmflow rotation submit-key knock`",
	}, knock)
	assert.NotContains(t, raw, "sk_test_rejected_knock_key")
}

// TestReadyzVerboseIsForOperators: the verbose answer names provider
// refusals and database errors, so it needs an operator token: none is 401,
// a service token 403, and neither runs the doctor; plain /readyz needs no
// token.
func TestReadyzVerboseIsForOperators(t *testing.T) {
	hs, runs := readyzServer(t, doctortest.KnockKey)
	resp, err := http.Get(hs.URL + "/readyz?verbose=1")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req, err := http.NewRequest(http.MethodGet, hs.URL+"/readyz?verbose=1", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Zero(t, runs.Load(), "a refused verbose call runs no check")
	code, _, raw := getReadyzAs(t, hs.URL+"/readyz", "")
	assert.Equal(t, http.StatusOK, code, raw)
	code, _, raw = getReadyz(t, hs.URL+"/readyz?verbose=1")
	assert.Equal(t, http.StatusOK, code, raw)
	assert.Equal(t, int64(1), runs.Load())
}
