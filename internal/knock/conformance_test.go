package knock_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/providerhttptest"
)

// TestClientConformance runs providerhttp's conformance tests on Knock's
// client, which sends the key as a bearer token.
func TestClientConformance(t *testing.T) {
	providerhttptest.TestClient(t, providerhttptest.Target[*knock.Client]{
		Name:       "knock",
		New:        knock.NewClient,
		NewConsole: knock.NewConsole,
		Call: func(ctx context.Context, c *knock.Client) (any, error) {
			return c.Users.Identify(ctx, "u1", knock.IdentifyParams{Email: "a@example.com"})
		},
		OK:         `{"__typename":"User","id":"u1","updated_at":"2026-08-01T10:00:00Z","email":"a@example.com"}`,
		Path:       "/v1/users/u1",
		BasePath:   "/v1",
		AuthHeader: "Authorization",
		AuthPrefix: "Bearer ",
		// Success answers are checked too, which keeps the fixture honest.
		Check: func(t testing.TB, h http.Handler) http.Handler {
			return openapicheck.Load(t, openapicheck.Knock).Middleware(t, true, h)
		},
		CheckRecorded:    func(t *testing.T, u any) { assert.Equal(t, "u1", u.(*knock.User).ID) },
		ErrNoAPIKey:      knock.ErrNoAPIKey,
		ErrInvalidParams: knock.ErrInvalidParams,
		Logged: providerhttptest.Logged[*knock.Client]{
			Call: func(ctx context.Context, c *knock.Client) error {
				_, err := c.Workflows.Trigger(ctx, "welcome", knock.TriggerParams{
					Recipients: []knock.Recipient{knock.UserID("u1")},
					Data:       map[string]any{"link": "https://x.test/?a=1&b=2"},
				}, knock.WithIdempotencyKey("welcome/u1"))
				return err
			},
			Method:         "POST",
			Path:           "/v1/workflows/welcome/trigger",
			IdempotencyKey: "welcome/u1",
			Body:           `{"recipients":["u1"],"data":{"link":"https://x.test/?a=1&b=2"}}`,
		},
	})
}
