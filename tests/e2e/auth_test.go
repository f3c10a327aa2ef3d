package e2e_test

import (
	"context"
	"encoding/json"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/api"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/httpserver"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/store"
)

// Start-API authentication (reliability scenario 10). TestAPIRequiresToken
// (api_test.go) covers a few wrong tokens and unknown paths, and
// TestStartAPITokenRotationEndToEnd (keyrotation_test.go) a rotation run by
// the KeyRotation workflow; these cover the rest.

// authRequest sends method path with the Authorization header set to auth
// (none when auth is "-").
func (f *fixture) authRequest(method, path, auth, body string) (int, map[string]any, http.Header) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	require.NoError(f.t, err)
	if auth != "-" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	code, out := f.decode(resp)
	return code, out, resp.Header
}

func (f *fixture) decode(resp *http.Response) (int, map[string]any) {
	f.t.Helper()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(f.t, json.Unmarshal(raw, &out), "body: %s", raw)
	}
	return resp.StatusCode, out
}

// TestEveryAPIRouteRefusesMissingAndMalformedTokens: every /v1 route, with
// a body that would otherwise be acted on, answers 401 with the JSON error
// and a WWW-Authenticate challenge, and nothing is stored or started.
func TestEveryAPIRouteRefusesMissingAndMalformedTokens(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertProduct(ctx, store.Product{SKU: "sku-a", Name: "Mug", PriceCents: 900, Settings: store.StockSettings{Threshold: 5}}))
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "cus_a", Email: "a@example.com"}))
	f.seedOrder("o-auth", "cus_auth")

	routes := []struct{ method, path, body string }{
		{http.MethodPost, "/v1/orders/o-auth/confirmation", ""},
		{http.MethodPost, "/v1/referrals/ref-1/reward", ""},
		{http.MethodPost, "/v1/inventory/sku-a/stock-level", `{"level":1}`},
		{http.MethodPost, "/v1/key-rotations/crmflow", ""},
		{http.MethodPost, "/v1/key-rotations/stripe/key", `{"key":"whsec_x"}`},
		{http.MethodPost, "/v1/key-rotations/stripe/revoked", ""},
		{http.MethodPost, "/v1/key-rotations/crmflow/token", ""},
		{http.MethodPost, "/v1/aliases", `{"alias_id":"al-auth","customer_id":"cus_a"}`},
		{http.MethodPost, "/v1/aliases/al-auth/disable", ""},
		{http.MethodGet, "/v1/workflows/order-confirmation/o-auth", ""},
		{http.MethodGet, "/v1/dead-letters", ""},
		{http.MethodPost, "/v1/dead-letters/1/retry", ""},
		{http.MethodGet, "/v1/inbox", ""},
		{http.MethodGet, "/v1/inbox/1", ""},
		{http.MethodPost, "/v1/inbox/1/replay", ""},
		{http.MethodGet, "/v1/not-a-route", ""},
	}
	// A trailing space is not among them: HTTP strips it from header values
	// before the handler sees them, so it would be the valid token.
	auths := []string{
		"-",                   // no header
		"",                    // empty header
		"Bearer",              // scheme only
		"Bearer ",             // empty token
		"Bearer  " + apiToken, // extra space: a different token
		"Basic " + apiToken,   // another scheme
		apiToken,              // no scheme
		"Bearer " + strings.ToUpper(apiToken),
		"Bearer " + apiToken + "," + apiToken,
		"Bearer " + strings.Repeat("x", 8<<10),
	}
	for _, r := range routes {
		for _, a := range auths {
			status, body, h := f.authRequest(r.method, r.path, a, r.body)
			if !assert.Equal(t, http.StatusUnauthorized, status, "%s %s with %.30q: %v", r.method, r.path, a, body) {
				continue
			}
			assert.Equal(t, "unauthorized", errorCode(body))
			assert.Equal(t, `Bearer realm="crmflow"`, h.Get("WWW-Authenticate"))
		}
	}
	status, _, _ := f.authRequest(http.MethodGet, "/v1/dead-letters?access_token="+apiToken, "-", "")
	assert.Equal(t, http.StatusUnauthorized, status, "a token in the query string is not a credential")
	f.requireNothingStartedOrStored()

	// The control: the same request with the token goes through.
	status, body, _ := f.authRequest(http.MethodGet, "/v1/dead-letters", "Bearer "+operatorToken, "")
	assert.Equal(t, http.StatusOK, status, body)
}

// TestStoredTokensRotateRevokeAndExpire: start-API tokens in the credential
// store. After a rotation both the new token and the old one (within its
// grace period) are accepted; a revoked token is refused at once, and a
// retiring token stops working when its grace period ends. Static tokens
// from config keep working throughout.
func TestStoredTokensRotateRevokeAndExpire(t *testing.T) {
	f := newFixture(t, fixtureOptions{credentialGrace: 2 * time.Second})
	ctx := context.Background()
	// A service token slot of its own: the fixture seeded api_token.
	p, n := providers.CrmflowToken().Key.Provider, providers.CrmflowToken().Key.Name+"_7"
	const (
		first  = "tok-first-0123456789abcdef"
		second = "tok-second-0123456789abcdef"
		third  = "tok-third-0123456789abcdef"
	)
	ok := func(tok string) bool {
		status, _, _ := f.authRequest(http.MethodGet, "/v1/workflows/order-confirmation/o-none", "Bearer "+tok, "")
		require.Contains(t, []int{http.StatusNotFound, http.StatusUnauthorized}, status)
		return status == http.StatusNotFound
	}
	assert.False(t, ok(first), "not yet issued")
	_, err := f.creds.SeedFromConfig(ctx, p, n, first)
	require.NoError(t, err)
	assert.True(t, ok(first), "issued")

	// A pending token is not valid until activated (only the pending token a
	// rotation generated is, for its first use).
	v2, err := f.creds.Put(ctx, p, n, second, "pending")
	require.NoError(t, err)
	assert.False(t, ok(second), "a pending token is not accepted")
	require.NoError(t, f.creds.Activate(ctx, p, n, v2))
	assert.True(t, ok(second), "the new token works at once")
	assert.True(t, ok(first), "the old token works within its grace period")

	// Revocation ends the old token before its grace period does.
	require.NoError(t, f.creds.Revoke(ctx, p, n, 1))
	assert.False(t, ok(first), "a revoked token is refused")
	assert.True(t, ok(second))

	// Expiry: the next rotation's retiring token stops after the grace.
	v3, err := f.creds.Put(ctx, p, n, third, "pending")
	require.NoError(t, err)
	require.NoError(t, f.creds.Activate(ctx, p, n, v3))
	assert.True(t, ok(second), "retiring, within grace")
	require.Eventually(t, func() bool { return !ok(second) }, 20*time.Second, 200*time.Millisecond,
		"a retiring token is refused once its grace period has ended")
	assert.True(t, ok(third))
	assert.True(t, ok(apiToken), "configured tokens are not affected by the store")
	assert.False(t, ok(first), "still revoked")
}

// TestTokenStoreOutageFailsClosed: when the token store cannot be read the
// API answers 503 to every request that carries a token and never runs the
// handler, rather than letting anyone in or passing a configured token's
// check by accident; a request with no token is 401 without a store read.
func TestTokenStoreOutageFailsClosed(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	logger, reg := slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry()
	hs := httptest.NewServer(api.Handler(api.HandlerOptions{
		HTTP: httpserver.Options{Logger: logger, Registry: reg},
		Ops:  api.OpsDeps{Registry: reg},
		API: &api.Deps{
			Logger: logger, Store: f.store, Starter: f.starter, Inbox: inbox.NewStore(f.store.Pool()),
			Auth: failingAuth{errors.New("database unavailable")},
		},
	}))
	defer hs.Close()
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + apiToken} {
		req, err := http.NewRequest(http.MethodPost, hs.URL+"/v1/inventory/sku-x/stock-level", strings.NewReader(`{"level":1}`))
		require.NoError(t, err)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		status, body := f.decode(resp)
		resp.Body.Close()
		if auth == "" {
			assert.Equal(t, http.StatusUnauthorized, status, "no token: %v", body)
			continue
		}
		assert.Equal(t, http.StatusServiceUnavailable, status, "auth %q: %v", auth, body)
		assert.Equal(t, "unavailable", errorCode(body))
	}
	total, _ := f.inboxRows()
	assert.Zero(t, total)
}

// TestTokenComparisonIsConstantTime: timing cannot be asserted reliably in
// a test on a shared machine, so this checks the code instead: both bearer
// checks (the start API's requireToken and the codec endpoint's
// BearerAuthorizer) compare with crypto/subtle.ConstantTimeCompare, compare
// the presented token with no == or !=, and never leave the loop over the
// valid tokens early (which would reveal which token matched).
func TestTokenComparisonIsConstantTime(t *testing.T) {
	for _, c := range []struct{ file, fn string }{
		{"../../internal/credentials/tokens.go", "Identify"},
	} {
		t.Run(c.fn, func(t *testing.T) {
			fset := token.NewFileSet()
			file, err := parser.ParseFile(fset, c.file, nil, 0)
			require.NoError(t, err)
			var fn *ast.FuncDecl
			for _, d := range file.Decls {
				if f, ok := d.(*ast.FuncDecl); ok && f.Name.Name == c.fn {
					fn = f
				}
			}
			require.NotNil(t, fn, "%s not found in %s", c.fn, c.file)
			constantTime, loops := 0, 0
			ast.Inspect(fn, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok {
						if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "subtle" && sel.Sel.Name == "ConstantTimeCompare" {
							constantTime++
						}
					}
				case *ast.BinaryExpr:
					if (n.Op == token.EQL || n.Op == token.NEQ) && (isIdent(n.X, "got") || isIdent(n.Y, "got")) {
						other := n.Y
						if isIdent(n.Y, "got") {
							other = n.X
						}
						lit, ok := other.(*ast.BasicLit)
						assert.True(t, ok && lit.Value == `""`, "%s: the token is compared with %s at %s", c.fn, n.Op, fset.Position(n.Pos()))
					}
				case *ast.RangeStmt:
					loops++
					ast.Inspect(n.Body, func(m ast.Node) bool {
						switch m := m.(type) {
						case *ast.BranchStmt:
							assert.NotEqual(t, token.BREAK, m.Tok, "%s leaves the token loop early at %s", c.fn, fset.Position(m.Pos()))
						case *ast.ReturnStmt:
							assert.Fail(t, "early return", "%s returns from the token loop at %s", c.fn, fset.Position(m.Pos()))
						case *ast.FuncLit:
							return false
						}
						return true
					})
				}
				return true
			})
			assert.Equal(t, 1, constantTime, "%s compares tokens with subtle.ConstantTimeCompare", c.fn)
			assert.Equal(t, 1, loops, "%s compares every valid token in one loop", c.fn)
		})
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// failingAuth stands for a credential store that cannot be read.
type failingAuth struct{ err error }

func (a failingAuth) Authenticate(context.Context, string) (credentials.Principal, error) {
	return credentials.Principal{}, a.err
}

// staticAuth accepts a fixed set of tokens, for servers without a store.
type staticAuth map[string]credentials.Principal

func (a staticAuth) Authenticate(_ context.Context, token string) (credentials.Principal, error) {
	if p, ok := a[token]; ok {
		return p, nil
	}
	return credentials.Principal{}, credentials.ErrUnauthenticated
}
