package activities_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
)

// resendSpec adapts the shared contract checker to the Resend fake. Resend's
// spec is OpenAPI 3.1 (kin-openapi reads it from v0.137 on) and documents no
// error answers, so only 2xx answers are checked.
type resendSpec struct{ *openapicheck.Spec }

// loadResendSpec returns Resend's spec, or nil when CRMFLOW_SPECS_DIR is
// unset; a set variable with a missing or broken spec fails the test rather
// than silently skipping the contract.
func loadResendSpec(t *testing.T) *resendSpec {
	t.Helper()
	s := openapicheck.Load(t, openapicheck.Resend)
	if s == nil {
		return nil
	}
	return &resendSpec{s}
}

func (s *resendSpec) validateRequest(r *http.Request, body []byte) error {
	return s.ValidateRequest(r, body)
}

func (s *resendSpec) validateResponse(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	return s.ValidateResponse(r, reqBody, status, header, body)
}

// TestResendRequestsMatchOpenAPI drives every request shape the Resend
// activities send through the fake, which checks each request and each 2xx
// answer against Resend's published spec. The other Resend tests are checked
// the same way whenever the spec is available; this one makes sure every
// operation is covered and that the check itself can fail.
func TestResendRequestsMatchOpenAPI(t *testing.T) {
	spec := &resendSpec{openapicheck.Require(t, openapicheck.Resend)}
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
