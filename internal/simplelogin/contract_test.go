package simplelogin_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
)

// TestRequestsMatchSimpleLoginOpenAPI sends one request of every shape the
// client produces through the validating fake. The other tests in this
// package are validated the same way whenever the spec is available; this one
// makes sure each operation is covered and that the check itself can fail.
//
// The spec is the community-written one: where it disagrees with
// simple-login/app's docs/api.md and server code, the client follows the
// latter (see the package's comments). Authentication is checked: the header
// the spec's apiKey scheme names (Authentication) must be present.
//
// Only requests are validated. The spec's response schemas disagree with what
// SimpleLogin sends (latest_activity is null when an alias has no activity,
// creation_date is "2020-04-06 17:57:14+00:00" rather than RFC 3339,
// user_info has profile_picture_url, the suffixes' required list names
// "signed-suffix"), so fixtures written from the server's code would fail it.
//
// No operation needs skipping for requests: where the spec and SimpleLogin's
// docs differ, the differences are in answers (GET of an unknown alias is 400
// "Unknown error", not 404; a delete of a deleted alias is 403, not 404), and
// in the list query, which the spec too puts in a POST body.
func TestSimpleLoginRequestsMatchOpenAPI(t *testing.T) {
	spec := openapicheck.Require(t, openapicheck.SimpleLogin)

	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && (r.URL.Path == "/api/alias/random/new" || r.URL.Path == "/api/v3/alias/custom/new"):
			answer(http.StatusCreated, nil, aliasJSON(7, "a@sl.test", true, "n"))(w, r)
		case r.URL.Path == "/api/v2/aliases":
			answer(http.StatusOK, nil, `{"aliases":[]}`)(w, r)
		case r.URL.Path == "/api/aliases/7/toggle":
			answer(http.StatusOK, nil, `{"enabled":false}`)(w, r)
		case r.Method == http.MethodDelete:
			answer(http.StatusOK, nil, `{"deleted":true}`)(w, r)
		case r.Method == http.MethodPost && r.URL.Path == "/api/mailboxes":
			answer(http.StatusCreated, nil, `{"id":3,"email":"b@example.com","verified":false,"default":false}`)(w, r)
		case r.URL.Path == "/api/aliases/7":
			answer(http.StatusOK, nil, aliasJSON(7, "a@sl.test", true, "n"))(w, r)
		case r.URL.Path == "/api/v2/mailboxes":
			answer(http.StatusOK, nil, `{"mailboxes":[{"id":1,"email":"me@example.com","default":true,"verified":true}]}`)(w, r)
		default:
			answer(http.StatusOK, nil, `{}`)(w, r)
		}
	})
	c := f.Client()
	ctx := context.Background()

	_, err := c.UserInfo(ctx)
	require.NoError(t, err)
	_, err = c.AliasOptions(ctx, "www.example.com")
	require.NoError(t, err)
	_, err = c.AliasOptions(ctx, "")
	require.NoError(t, err)
	_, err = c.Mailboxes(ctx)
	require.NoError(t, err)
	_, err = c.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Hostname: "shop.example", Mode: simplelogin.ModeWord, Note: "crmflow:alias/a1"})
	require.NoError(t, err)
	_, err = c.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{})
	require.NoError(t, err)
	_, err = c.CreateCustomAlias(ctx, simplelogin.CustomAliasParams{
		Hostname: "shop.example", Prefix: "news", SignedSuffix: ".x@sl.test.sig", MailboxIDs: []int64{1, 2}, Note: "n", Name: "Ada",
	})
	require.NoError(t, err)
	_, err = c.CreateCustomAlias(ctx, simplelogin.CustomAliasParams{Prefix: "news", SignedSuffix: ".x@sl.test.sig", MailboxIDs: []int64{1}})
	require.NoError(t, err)
	_, err = c.GetAlias(ctx, 7)
	require.NoError(t, err)
	_, err = c.ListAliases(ctx, simplelogin.ListParams{PageID: 0})
	require.NoError(t, err)
	_, err = c.ListAliases(ctx, simplelogin.ListParams{PageID: 3, Query: "crmflow:alias/a1", Filter: simplelogin.FilterDisabled})
	require.NoError(t, err)
	_, err = c.ToggleAlias(ctx, 7)
	require.NoError(t, err)
	require.NoError(t, c.DeleteAlias(ctx, 7))
	_, err = c.CreateMailbox(ctx, "b@example.com")
	require.NoError(t, err)
	require.NoError(t, c.SetAliasMailboxes(ctx, 7, []int64{3, 1}))
	require.NoError(t, c.DeleteMailbox(ctx, 3))
	assert.Len(t, f.Requests(), 16)

	// The validator must reject what the spec rejects, or the checks above
	// prove nothing.
	post := func(target string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, target, nil)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authentication", testKey)
		return r
	}
	assert.Error(t, spec.ValidateRequest(post("/api/v3/alias/custom/new"), []byte(`{"alias_prefix":"p","mailbox_ids":[1]}`)),
		"a custom alias without signed_suffix must fail")
	assert.Error(t, spec.ValidateRequest(post("/api/alias/random/new?mode=bogus"), []byte(`{}`)),
		"a random alias with an unknown mode must fail")
	patch := httptest.NewRequest(http.MethodPatch, "/api/aliases/7", nil)
	patch.Header.Set("Content-Type", "application/json")
	patch.Header.Set("Authentication", testKey)
	assert.Error(t, spec.ValidateRequest(patch, []byte(`{"mailbox_ids":["twelve"]}`)),
		"mailbox ids that are not integers must fail")
	noKey := post("/api/alias/random/new")
	noKey.Header.Del("Authentication")
	assert.Error(t, spec.ValidateRequest(noKey, []byte(`{}`)), "a request without the Authentication header must fail")
	bearer := httptest.NewRequest(http.MethodGet, "/api/user_info", nil)
	bearer.Header.Set("Authorization", "Bearer "+testKey)
	assert.Error(t, spec.ValidateRequest(bearer, nil), "Authorization is not the header SimpleLogin reads")
	noPage := httptest.NewRequest(http.MethodGet, "/api/v2/aliases", nil)
	noPage.Header.Set("Authentication", testKey)
	err = spec.ValidateRequest(noPage, nil)
	var reqErr *openapi3filter.RequestError
	if assert.True(t, errors.As(err, &reqErr), "a list without page_id must fail on the parameter: %v", err) {
		assert.Equal(t, "page_id", reqErr.Parameter.Name)
	}
}
