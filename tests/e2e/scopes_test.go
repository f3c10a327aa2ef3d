package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/store"
)

// TestEveryRouteByScope is the table of every route crmflow serves with a
// token against each kind of caller: none (401), a service token (its
// routes run, operator routes 403), an operator token (everything runs),
// and a revoked token of either kind (401 everywhere). "Runs" means the
// handler answered (any status but 401 and 403). Nothing a refused request
// sends is stored or started.
func TestEveryRouteByScope(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertProduct(ctx, store.Product{SKU: "sku-s", Name: "Mug", PriceCents: 900, Settings: store.StockSettings{Threshold: 5}}))
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "cus_s", Email: "s@example.com"}))

	// A service and an operator token, each revoked.
	token := providers.CrmflowToken().Key
	revokedService, revokedOperator := "revoked-service-0123456789", "revoked-operator-0123456789"
	require.NoError(t, f.creds.SeedTokens(ctx, []string{"unused", "unused-2", revokedService}, map[string]string{"mallory": revokedOperator}))
	require.NoError(t, f.creds.Revoke(ctx, token.Provider, token.Name+"_3", 1))
	require.NoError(t, f.creds.Revoke(ctx, "crmflow_operator", "mallory", 1))

	type route struct {
		method, path, body string
		operator           bool
	}
	routes := []route{
		{http.MethodPost, "/v1/orders/o-none/confirmation", "", false},
		{http.MethodPost, "/v1/referrals/ref-none/reward", "", false},
		{http.MethodPost, "/v1/inventory/sku-none/stock-level", `{"level":1}`, false},
		{http.MethodPost, "/v1/aliases", `{"alias_id":"al-s","customer_id":"cus_none"}`, false},
		{http.MethodPost, "/v1/aliases/al-none/disable", "", false},
		{http.MethodGet, "/v1/workflows/order-confirmation/o-none", "", false},
		{http.MethodGet, "/v1/not-a-route", "", false},
		{http.MethodPost, "/codec/decode", `{"payloads":[]}`, false},
		{http.MethodPost, "/codec/encode", `{"payloads":[]}`, true},
		{http.MethodGet, "/readyz?verbose=1", "", true},
		{http.MethodGet, "/v1/dead-letters", "", true},
		{http.MethodPost, "/v1/dead-letters/999999/retry", "", true},
		{http.MethodGet, "/v1/inbox", "", true},
		{http.MethodGet, "/v1/inbox?status=unroutable&provider=stripe&limit=10", "", true},
		{http.MethodGet, "/v1/inbox/999999", "", true},
		{http.MethodPost, "/v1/inbox/999999/replay", "", true},
		{http.MethodPost, "/v1/key-rotations/nope", "", true},
		{http.MethodPost, "/v1/key-rotations/stripe/key", `{"key":"sk_test_0123456789abcdefgh"}`, true},
		{http.MethodPost, "/v1/key-rotations/stripe/revoked", "", true},
		{http.MethodPost, "/v1/key-rotations/stripe/cancel", "", true},
		{http.MethodPost, "/v1/key-rotations/crmflow/token", "", true},
		{http.MethodPost, "/v1/key-rotations/crmflow/token/ack", "", true},
	}
	callers := []struct {
		name, auth string
		scope      int // 0 none, 1 service, 2 operator
	}{
		{"no token", "-", 0},
		{"revoked service token", "Bearer " + revokedService, 0},
		{"revoked operator token", "Bearer " + revokedOperator, 0},
		{"service token", "Bearer " + apiToken, 1},
		{"operator token", "Bearer " + operatorToken, 2},
	}
	for _, r := range routes {
		need := 1
		if r.operator {
			need = 2
		}
		for _, c := range callers {
			start := time.Now()
			status, body, _ := f.authRequest(r.method, r.path, c.auth, r.body)
			if d := time.Since(start); d > time.Second {
				t.Logf("%s %s, %s took %s", r.method, r.path, c.name, d)
			}
			switch {
			case c.scope == 0:
				assert.Equal(t, http.StatusUnauthorized, status, "%s %s, %s: %v", r.method, r.path, c.name, body)
				assert.Equal(t, "unauthorized", errorCode(body), "%s %s, %s", r.method, r.path, c.name)
			case c.scope < need:
				assert.Equal(t, http.StatusForbidden, status, "%s %s, %s: %v", r.method, r.path, c.name, body)
				assert.Equal(t, "forbidden", errorCode(body), "%s %s, %s", r.method, r.path, c.name)
			default:
				assert.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, status,
					"%s %s, %s: %v", r.method, r.path, c.name, body)
			}
		}
	}
	// None of the requests started or stored anything: the refused ones
	// never ran, and the allowed ones named nothing that exists.
	total, _ := f.inboxRows()
	assert.Zero(t, total)
	assert.False(t, strings.Contains(f.auditActors(), "mallory"), "a revoked operator acted")
}

// auditActors lists the audit log's actors.
func (f *fixture) auditActors() string {
	f.t.Helper()
	var actors string
	require.NoError(f.t, f.store.Pool().QueryRow(context.Background(),
		`SELECT coalesce(string_agg(DISTINCT actor, ','), '') FROM audit_log`).Scan(&actors))
	return actors
}
