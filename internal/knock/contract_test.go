package knock_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
)

// TestRequestsMatchKnockOpenAPI sends one request of every shape the client
// produces through the validating fake. The other tests in this package are
// validated the same way whenever the spec is available; this one makes sure
// each operation is covered and that the check itself can fail.
func TestRequestsMatchKnockOpenAPI(t *testing.T) {
	spec := openapicheck.Require(t, openapicheck.Knock)

	f := newFakeKnock(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/trigger"):
			triggerOK(w, r)
		case strings.HasSuffix(r.URL.Path, "/cancel"), r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			answer(http.StatusOK, nil, `{"__typename":"User","id":"user_1","updated_at":"2026-08-01T10:00:00Z","email":"a@example.com"}`)(w, r)
		}
	})
	c := f.Client()
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
	require.NoError(t, c.Users.Delete(ctx, "user_1"))
	assert.Len(t, f.Requests(), 7)

	// The validator must reject what Knock rejects, or the checks above prove nothing.
	bad := httptest.NewRequest(http.MethodPost, "/v1/workflows/wf/trigger", nil)
	bad.Header.Set("Content-Type", "application/json")
	assert.Error(t, spec.ValidateRequest(bad, []byte(`{"data":{}}`)), "a trigger without recipients must fail")
	bad = httptest.NewRequest(http.MethodPost, "/v1/workflows/wf/cancel", nil)
	bad.Header.Set("Content-Type", "application/json")
	assert.Error(t, spec.ValidateRequest(bad, []byte(`{"recipients":["u"]}`)), "a cancel without cancellation_key must fail")
}
