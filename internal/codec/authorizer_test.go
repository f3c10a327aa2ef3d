package codec_test

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/crmflow/crmflow/internal/codec"
)

// bearerAuthorizer lets through "Authorization: Bearer <t>" for any t that
// tokens returns (crmflow itself authorizes through the credential store,
// with scopes); an error from tokens refuses.
func bearerAuthorizer(tokens func(context.Context) ([]string, error)) codec.Authorizer {
	return func(r *http.Request, _ bool) error {
		refused := &codec.Denial{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "a valid bearer token is required"}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || got == "" {
			return refused
		}
		valid, err := tokens(r.Context())
		if err != nil {
			return refused
		}
		match := 0
		for _, t := range valid {
			match |= subtle.ConstantTimeCompare([]byte(got), []byte(t))
		}
		if match != 1 {
			return refused
		}
		return nil
	}
}
