package knock_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/providerhttp/providerhttptest"
)

// TestAPIKeyFunc runs providerhttp's key-function conformance tests on
// Knock's client, which sends the key as a bearer token.
func TestAPIKeyFunc(t *testing.T) {
	providerhttptest.TestAPIKeyFunc(t, providerhttptest.KeyFuncTarget{
		AuthHeader: "Authorization",
		AuthPrefix: "Bearer ",
		OK:         `{"id":"u1"}`,
		New: func(opts ...knock.ClientOption) providerhttptest.Call {
			c := knock.NewClient(opts...)
			return func(ctx context.Context) (any, error) {
				return c.Users.Identify(ctx, "u1", knock.IdentifyParams{Email: "a@example.com"})
			}
		},
		RecordedPath:     "/v1/users/u1",
		CheckRecorded:    func(t *testing.T, u any) { assert.Equal(t, "u1", u.(*knock.User).ID) },
		ErrNoAPIKey:      knock.ErrNoAPIKey,
		ErrInvalidParams: knock.ErrInvalidParams,
	})
}
