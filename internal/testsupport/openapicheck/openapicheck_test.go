package openapicheck_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
)

// childEnv marks a run of this test binary started by runChild.
const childEnv = "OPENAPICHECK_CHILD"

// runChild runs one test of this binary in a child process with specsDir as
// CRMFLOW_SPECS_DIR, and returns its output and whether it passed: the
// behaviour under test fails or skips the test that calls it.
func runChild(t *testing.T, test, specsDir string) (string, bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1", openapicheck.EnvSpecsDir+"="+specsDir)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func TestLoadFailsClearlyWhenTheFolderIsWrong(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		openapicheck.Load(t, openapicheck.Knock)
		return
	}
	out, passed := runChild(t, t.Name(), t.TempDir())
	assert.False(t, passed, "a set but wrong folder must fail the test:\n%s", out)
	assert.Contains(t, out, openapicheck.EnvSpecsDir+"=")
	assert.Contains(t, out, "knock.openapi.yaml")
	assert.Contains(t, out, "cannot be used")
}

func TestRequireSkipsSayingWhyWhenUnset(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		openapicheck.Require(t, openapicheck.Resend)
		t.Fatal("Require returned without a spec")
	}
	out, passed := runChild(t, t.Name(), "")
	assert.True(t, passed, out)
	assert.Contains(t, out, "--- SKIP")
	assert.Contains(t, out, openapicheck.EnvSpecsDir+" is not set")
	assert.Nil(t, func() *openapicheck.Spec {
		t.Setenv(openapicheck.EnvSpecsDir, "")
		return openapicheck.Load(t, openapicheck.Knock)
	}(), "unset means no checks, not a failure")
}

// TestEachSpecAcceptsAGoodRequestAndRefusesABadOne proves that the checks
// the fakes run can fail, for every provider.
func TestEachSpecAcceptsAGoodRequestAndRefusesABadOne(t *testing.T) {
	type req struct {
		method, target, body string
		header               map[string]string
	}
	cases := []struct {
		provider  openapicheck.Provider
		good, bad req
	}{
		{openapicheck.Knock,
			req{http.MethodPost, "/v1/workflows/order-confirmation/trigger", `{"recipients":["cus_1"],"data":{"order_id":"o1"}}`, nil},
			req{http.MethodPost, "/v1/workflows/order-confirmation/trigger", `{"data":{"order_id":"o1"}}`, nil}},
		{openapicheck.Resend,
			req{http.MethodPost, "/api-keys", `{"name":"crmflow-rot-1","permission":"full_access"}`, nil},
			req{http.MethodPost, "/api-keys", `{"name":"crmflow-rot-1","permission":"everything"}`, nil}},
		{openapicheck.SimpleLogin,
			req{http.MethodGet, "/api/user_info", "", map[string]string{"Authentication": "k"}},
			req{http.MethodGet, "/api/user_info", "", map[string]string{"Authorization": "Bearer k"}}},
	}
	for _, c := range cases {
		t.Run(c.provider.Name, func(t *testing.T) {
			spec := openapicheck.Require(t, c.provider)
			build := func(r req) *http.Request {
				hr := httptest.NewRequest(r.method, r.target, strings.NewReader(r.body))
				if r.body != "" {
					hr.Header.Set("Content-Type", "application/json")
				}
				for k, v := range r.header {
					hr.Header.Set(k, v)
				}
				return hr
			}
			require.NoError(t, spec.ValidateRequest(build(c.good), []byte(c.good.body)))
			assert.Error(t, spec.ValidateRequest(build(c.bad), []byte(c.bad.body)))
			unknown := httptest.NewRequest(http.MethodGet, "/no/such/operation", nil)
			assert.ErrorContains(t, spec.ValidateRequest(unknown, nil), "is not an operation of "+c.provider.Name)
		})
	}
}

// TestMiddlewarePassesRequestsThrough: the wrapped handler sees the body the
// check read, and answers unchanged.
func TestMiddlewarePassesRequestsThrough(t *testing.T) {
	spec := openapicheck.Require(t, openapicheck.Knock)
	var got string
	h := spec.Middleware(t, true, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = string(b)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Test", "kept")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"workflow_run_id":"0b6d6e3c-4a9f-4a51-9a0e-3d2c1b0a9f8e"}`))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := `{"recipients":["cus_1"]}`
	resp, err := http.Post(srv.URL+"/v1/workflows/wf/trigger", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "kept", resp.Header.Get("X-Test"))
	assert.Equal(t, body, got)
	var nilSpec *openapicheck.Spec
	assert.NotNil(t, nilSpec.Middleware(t, true, http.NotFoundHandler()), "no specs: the handler itself")
}

// TestValidateSchemaChecksWebhookPayloads: Resend's webhook events are
// schemas, not operations; a good event passes and a broken one fails.
func TestValidateSchemaChecksWebhookPayloads(t *testing.T) {
	spec := openapicheck.Require(t, openapicheck.Resend)
	good := `{"type":"email.bounced","created_at":"2026-08-21T10:00:00.000Z","data":{"email_id":"e1",
"created_at":"2026-08-21T09:59:00.000Z","from":"CRM <hello@example.com>","to":["ada@example.com"],"subject":"Receipt",
"bounce":{"diagnosticCode":["smtp; 550 5.1.1 user unknown"],"message":"no such user","subType":"General","type":"Permanent"}}}`
	require.NoError(t, spec.ValidateSchema("EmailBouncedEvent", []byte(good)))
	assert.Error(t, spec.ValidateSchema("EmailBouncedEvent", []byte(strings.Replace(good, `"Permanent"`, `"Forever"`, 1))),
		"a bounce type the spec does not list must fail")
	assert.Error(t, spec.ValidateSchema("EmailBouncedEvent", []byte(`{"type":"email.bounced","data":{}}`)), "missing fields must fail")
	assert.Error(t, spec.ValidateSchema("NoSuchSchema", []byte(good)))
}
