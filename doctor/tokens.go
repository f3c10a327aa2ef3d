package doctor

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/crmflow/crmflow/internal/credentials"
)

// checkTokens compares the tokens config names with the credential store,
// which decides: a configured token the store no longer accepts (rotated or
// revoked there) is worth a warning, since whoever reads config expects it
// to work. It never fails: the store being right is the point.
func (c *Checker) checkTokens(ctx context.Context, pg postgresOutcome) Result {
	creds := c.credentialStore(pg)
	if creds == nil {
		return pass("tokens", "not compared: the credential store was not read")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	var stale []string
	check := func(what, token string) error {
		if token == "" {
			return nil
		}
		_, err := creds.Identify(ctx, token)
		switch {
		case errors.Is(err, credentials.ErrUnauthenticated):
			stale = append(stale, what)
		case err != nil:
			return err
		}
		return nil
	}
	for i, t := range c.Config.ServiceTokens() {
		if err := check("api_tokens["+strconv.Itoa(i)+"]", t); err != nil {
			return fail("tokens", "cannot read tokens from the credential store: "+err.Error(), postgresFix)
		}
	}
	for name, t := range c.Config.Operators() {
		if err := check("operator_tokens."+name, t); err != nil {
			return fail("tokens", "cannot read tokens from the credential store: "+err.Error(), postgresFix)
		}
	}
	if len(stale) == 0 {
		return pass("tokens", fmt.Sprintf("every configured token (%d service, %d operator) is valid in the credential store",
			len(c.Config.ServiceTokens()), len(c.Config.Operators())))
	}
	return pass("tokens", "warning: "+strings.Join(stale, ", ")+" no longer valid in the credential store (rotated or revoked there)").
		withFix("the store decides; update config so it names the tokens in use, or ignore this if they were revoked on purpose")
}
