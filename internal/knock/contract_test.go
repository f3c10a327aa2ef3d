package knock_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/knock"
)

// specsDirEnv names the folder holding the providers' published OpenAPI
// specs; the specs are data kept outside the repository.
const specsDirEnv = "CRMFLOW_SPECS_DIR"

// specHost is the host of the spec's only server entry; requests are
// re-addressed to it so the router matches them.
const specHost = "api.knock.app"

// knockSpec validates requests and responses against Knock's OpenAPI spec.
type knockSpec struct {
	router routers.Router
}

var (
	specOnce sync.Once
	specVal  *knockSpec
	specErr  error
)

// loadSpec returns Knock's spec, loaded once per test binary, or nil when
// CRMFLOW_SPECS_DIR is unset. A set variable with a missing or broken spec
// fails the test rather than silently skipping the contract.
func loadSpec(t *testing.T) *knockSpec {
	t.Helper()
	dir := os.Getenv(specsDirEnv)
	if dir == "" {
		return nil
	}
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		// No doc.Validate: Knock's spec fails it on its own example and
		// naming defects, and the router does not need it.
		doc, err := loader.LoadFromFile(filepath.Join(dir, "knock.openapi.yaml"))
		if err != nil {
			specErr = err
			return
		}
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			specErr = err
			return
		}
		specVal = &knockSpec{router: router}
	})
	require.NoError(t, specErr, "load Knock's OpenAPI spec from %s", specsDirEnv)
	return specVal
}

// route finds the spec operation for a request received by a test server.
func (s *knockSpec) route(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	req := r.Clone(context.Background())
	req.URL.Scheme, req.URL.Host, req.Host = "https", specHost, specHost
	req.RequestURI = ""
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return nil, err
	}
	return &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}, nil
}

func (s *knockSpec) validateRequest(r *http.Request, body []byte) error {
	in, err := s.route(r, body)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateRequest(context.Background(), in)
}

func (s *knockSpec) validateResponse(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	in, err := s.route(r, reqBody)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                in.Options,
	})
}

// TestRequestsMatchKnockOpenAPI sends one request of every shape the client
// produces through the validating fake. The other tests in this package are
// validated the same way whenever the spec is available; this one makes sure
// each operation is covered and that the check itself can fail.
func TestRequestsMatchKnockOpenAPI(t *testing.T) {
	if os.Getenv(specsDirEnv) == "" {
		t.Skipf("%s is not set: skipping the check of requests against Knock's published OpenAPI spec "+
			"(set it to the folder holding knock.openapi.yaml)", specsDirEnv)
	}
	spec := loadSpec(t)

	f := newFakeKnock(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/trigger"):
			triggerOK(w, r)
		case strings.HasSuffix(r.URL.Path, "/cancel"):
			w.WriteHeader(http.StatusNoContent)
		default:
			answer(http.StatusOK, nil, `{"__typename":"User","id":"user_1","updated_at":"2026-08-01T10:00:00Z","email":"a@example.com"}`)(w, r)
		}
	})
	c := f.client()
	ctx := context.Background()

	_, err := c.Workflows.Trigger(ctx, "order-confirmation", knock.TriggerParams{
		Recipients:      []knock.Recipient{knock.UserID("cus_1")},
		Actor:           knock.UserID("staff_1"),
		Data:            map[string]any{"order_id": "o1", "lines": []any{map[string]any{"sku": "A", "qty": 2}}},
		Tenant:          "acme",
		CancellationKey: "order-confirmation/o1",
	}, knock.WithIdempotencyKey("order-confirmation/o1/notify"))
	require.NoError(t, err)
	_, err = c.Workflows.Trigger(ctx, "low-stock", knock.TriggerParams{Recipients: []knock.Recipient{knock.UserID("ops")}})
	require.NoError(t, err)
	_, err = c.Users.Identify(ctx, "user_1", knock.IdentifyParams{Email: "a@example.com", Name: "A", Properties: map[string]any{"plan": "pro"}})
	require.NoError(t, err)
	_, err = c.Users.Identify(ctx, "user_2", knock.IdentifyParams{})
	require.NoError(t, err)
	require.NoError(t, c.Workflows.Cancel(ctx, "order-confirmation", knock.CancelParams{
		CancellationKey: "order-confirmation/o1",
		Recipients:      []knock.Recipient{knock.UserID("cus_1"), knock.Object("projects", "p1")},
	}))
	require.NoError(t, c.Workflows.Cancel(ctx, "order-confirmation", knock.CancelParams{CancellationKey: "order-confirmation/o1"}))
	assert.Len(t, f.requests(), 6)

	// The validator must reject what Knock rejects, or the checks above prove nothing.
	bad := httptest.NewRequest(http.MethodPost, "/v1/workflows/wf/trigger", nil)
	bad.Header.Set("Content-Type", "application/json")
	assert.Error(t, spec.validateRequest(bad, []byte(`{"data":{}}`)), "a trigger without recipients must fail")
	bad = httptest.NewRequest(http.MethodPost, "/v1/workflows/wf/cancel", nil)
	bad.Header.Set("Content-Type", "application/json")
	assert.Error(t, spec.validateRequest(bad, []byte(`{"recipients":["u"]}`)), "a cancel without cancellation_key must fail")
}
