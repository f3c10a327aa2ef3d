package simplelogin_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/providerhttptest"
)

// TestSimpleLoginClientConformance runs providerhttp's conformance tests on
// SimpleLogin's client, which sends the key as it is in Authentication.
func TestSimpleLoginClientConformance(t *testing.T) {
	providerhttptest.TestClient(t, providerhttptest.Target[*simplelogin.Client]{
		Name:       "simplelogin",
		New:        simplelogin.NewClient,
		NewConsole: simplelogin.NewConsole,
		Call:       func(ctx context.Context, c *simplelogin.Client) (any, error) { return c.UserInfo(ctx) },
		OK:         `{"name":"n","email":"e@example.com"}`,
		Path:       "/api/user_info",
		BasePath:   "/api",
		AuthHeader: "Authentication",
		Check: func(t testing.TB, h http.Handler) http.Handler {
			return openapicheck.Load(t, openapicheck.SimpleLogin).Middleware(t, false, h)
		},
		CheckRecorded: func(t *testing.T, info any) {
			assert.Equal(t, "crmflow console", info.(*simplelogin.UserInfo).Name)
		},
		ErrNoAPIKey:      simplelogin.ErrNoAPIKey,
		ErrInvalidParams: simplelogin.ErrInvalidParams,
		Logged: providerhttptest.Logged[*simplelogin.Client]{
			Call: func(ctx context.Context, c *simplelogin.Client) error {
				_, err := c.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Hostname: "a.example", Note: "crmflow:alias/a1 <x&y>"})
				return err
			},
			Method: "POST",
			Path:   "/api/alias/random/new?hostname=a.example",
			Body:   `{"note":"crmflow:alias/a1 <x&y>"}`,
		},
	})
}
