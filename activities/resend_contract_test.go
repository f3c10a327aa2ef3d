package activities_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/activities"
)

// resendSpecsDirEnv names the folder holding the providers' published
// OpenAPI specs; the specs are data kept outside the repository.
const resendSpecsDirEnv = "CRMFLOW_SPECS_DIR"

// resendSpecHost is the host of the spec's only server entry; requests are
// re-addressed to it so the router matches them.
const resendSpecHost = "api.resend.com"

// resendSpec validates requests and answers against Resend's OpenAPI spec
// (3.1, which kin-openapi reads from v0.137 on).
type resendSpec struct {
	router routers.Router
}

var (
	resendSpecOnce sync.Once
	resendSpecVal  *resendSpec
	resendSpecErr  error
)

// loadResendSpec returns Resend's spec, loaded once per test binary, or nil
// when CRMFLOW_SPECS_DIR is unset. A set variable with a missing or broken
// spec fails the test rather than silently skipping the contract.
func loadResendSpec(t *testing.T) *resendSpec {
	t.Helper()
	dir := os.Getenv(resendSpecsDirEnv)
	if dir == "" {
		return nil
	}
	resendSpecOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join(dir, "resend.openapi.yaml"))
		if err != nil {
			resendSpecErr = err
			return
		}
		// Resend's spec passes validation, so a failure here means a broken
		// or different file.
		if err := doc.Validate(context.Background()); err != nil {
			resendSpecErr = err
			return
		}
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			resendSpecErr = err
			return
		}
		resendSpecVal = &resendSpec{router: router}
	})
	require.NoError(t, resendSpecErr, "load Resend's OpenAPI spec from %s", resendSpecsDirEnv)
	return resendSpecVal
}

// route finds the spec operation for a request received by a test server.
func (s *resendSpec) route(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	req := r.Clone(context.Background())
	req.URL.Scheme, req.URL.Host, req.Host = "https", resendSpecHost, resendSpecHost
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
		// The fake checks the bearer key itself; the spec only declares it.
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}, nil
}

func (s *resendSpec) validateRequest(r *http.Request, body []byte) error {
	in, err := s.route(r, body)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateRequest(context.Background(), in)
}

// validateResponse checks a 2xx answer of the fake: the spec documents no
// error answers, so those cannot be checked.
func (s *resendSpec) validateResponse(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
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

// TestResendRequestsMatchOpenAPI drives every request shape the Resend
// activities send through the fake, which checks each request and each 2xx
// answer against Resend's published spec. The other Resend tests are checked
// the same way whenever the spec is available; this one makes sure every
// operation is covered and that the check itself can fail.
func TestResendRequestsMatchOpenAPI(t *testing.T) {
	if os.Getenv(resendSpecsDirEnv) == "" {
		t.Skipf("%s is not set: skipping the check of Resend requests against Resend's published OpenAPI spec "+
			"(set it to the folder holding resend.openapi.yaml)", resendSpecsDirEnv)
	}
	spec := loadResendSpec(t)
	f := newFakeResend(t)
	require.NotNil(t, f.spec, "the fake must validate against the spec")
	keys := &rsKeys{t: t, key: rsAdminToken}
	a := f.activities(keys)

	for i := range 110 { // two pages of keys: the second request carries after=
		f.addKey("dashboard-"+string(rune('a'+i%26)), activities.ResendSendingAccess)
	}
	leftover := f.addKey("crmflow-rot-contract", activities.ResendFullAccess)
	full, err := rsCreate(t, a, nil, activities.CreateAPIKeyInput{Name: "crmflow-rot-contract", Permission: activities.ResendFullAccess})
	require.NoError(t, err)
	sending, err := rsCreate(t, a, nil, activities.CreateAPIKeyInput{Name: "crmflow-rot-contract-s", Permission: activities.ResendSendingAccess})
	require.NoError(t, err)
	v, err := rsVerify(t, a, nil, full.Token.Reveal())
	require.NoError(t, err)
	assert.True(t, v.Valid)
	v, err = rsVerify(t, a, nil, sending.Token.Reveal())
	require.NoError(t, err)
	assert.True(t, v.Restricted)
	require.NoError(t, rsDelete(t, a, nil, sending.KeyID))
	require.NoError(t, rsDelete(t, a, nil, "0c9b2a7e-5d1f-4c8e-9a3b-000000000404"))

	routes := routePatterns(f.requests())
	for _, want := range []string{"GET /api-keys", "POST /api-keys", "DELETE /api-keys/{id}", "GET /domains"} {
		assert.Contains(t, routes, want)
	}
	assert.True(t, slices.ContainsFunc(f.requests(), func(r rsRequest) bool { return r.query.Get("after") != "" }),
		"a paged list request was checked")
	_, kept := f.keyByID(leftover.id)
	assert.False(t, kept)

	// The validator must reject what Resend rejects, or the checks above
	// prove nothing.
	post := func(body string) error {
		r := httptest.NewRequest(http.MethodPost, "/api-keys", nil)
		r.Header.Set("Content-Type", "application/json")
		return spec.validateRequest(r, []byte(body))
	}
	require.NoError(t, post(`{"name":"crmflow-x","permission":"full_access"}`), "the control request must pass")
	assert.Error(t, post(`{"name":"crmflow-x","permission":"bogus"}`), "an unknown permission must fail")
	assert.Error(t, post(`{"permission":"full_access"}`), "a key without a name must fail")
	assert.Error(t, spec.validateRequest(httptest.NewRequest(http.MethodGet, "/domains?limit=0", nil), nil), "limit 0 must fail")
	assert.Error(t, spec.validateRequest(httptest.NewRequest(http.MethodGet, "/api-keys?limit=101", nil), nil), "limit 101 must fail")

	list := httptest.NewRequest(http.MethodGet, "/api-keys?limit=100", nil)
	json := http.Header{"Content-Type": {"application/json"}}
	require.NoError(t, spec.validateResponse(list, nil, 200, json, []byte(`{"object":"list","has_more":false,"data":[{"id":"k","name":"n","created_at":"x","last_used_at":null}]}`)))
	assert.Error(t, spec.validateResponse(list, nil, 200, json, []byte(`{"object":"list","has_more":"no","data":[]}`)),
		"a list answer with a string has_more must fail")
}
