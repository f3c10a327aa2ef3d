package simplelogin_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/internal/providerhttp/providerhttptest"
	"github.com/crmflow/crmflow/internal/simplelogin"
)

// TestAPIKeyFunc runs providerhttp's key-function conformance tests on
// SimpleLogin's client, which sends the key as it is in Authentication.
func TestAPIKeyFunc(t *testing.T) {
	providerhttptest.TestAPIKeyFunc(t, providerhttptest.KeyFuncTarget{
		AuthHeader: "Authentication",
		OK:         `{"name":"n","email":"e@example.com"}`,
		New: func(opts ...simplelogin.ClientOption) providerhttptest.Call {
			c := simplelogin.NewClient(opts...)
			return func(ctx context.Context) (any, error) { return c.UserInfo(ctx) }
		},
		RecordedPath: "/api/user_info",
		CheckRecorded: func(t *testing.T, info any) {
			assert.Equal(t, "crmflow console", info.(*simplelogin.UserInfo).Name)
		},
		ErrNoAPIKey:      simplelogin.ErrNoAPIKey,
		ErrInvalidParams: simplelogin.ErrInvalidParams,
	})
}
