package config

import (
	"fmt"
	"regexp"
	"strings"
)

// DevOperator and DevOperatorToken are the documented operator of `crmflow
// dev`: its token works on the operator routes and the console of a dev
// stack only.
const (
	DevOperator      = "dev"
	DevOperatorToken = "dev-operator-token"
)

// operatorNameRE is what an operator's name may be: it names the token in
// the credential store and every decision the operator makes.
var operatorNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// minTokenLen is the shortest token config accepts: a token is a password
// for an API that moves money.
const minTokenLen = 16

// Operators are the operator tokens of operator_tokens ("name=token"
// entries), by operator name. Entries that do not parse are left out;
// Validate names them.
func (c *Config) Operators() map[string]string {
	out := map[string]string{}
	for _, e := range c.OperatorTokens {
		if name, tok, ok := strings.Cut(e.Reveal(), "="); ok {
			out[strings.TrimSpace(name)] = strings.TrimSpace(tok)
		}
	}
	return out
}

// ServiceTokens are the configured start-API tokens, revealed.
func (c *Config) ServiceTokens() []string {
	out := make([]string, len(c.APITokens))
	for i, t := range c.APITokens {
		out[i] = t.Reveal()
	}
	return out
}

// tokenProblems checks operator_tokens: each token long enough, each
// operator named once with a name the store accepts, and no
// token in both lists (a service token must never also be an operator's).
func (c *Config) tokenProblems(add func(key, format string, args ...any)) {
	service := map[string]bool{}
	for _, t := range c.APITokens {
		service[t.Reveal()] = true
	}
	seen := map[string]bool{}
	for _, e := range c.OperatorTokens {
		name, tok, ok := strings.Cut(e.Reveal(), "=")
		name, tok = strings.TrimSpace(name), strings.TrimSpace(tok)
		switch {
		case !ok:
			add("operator_tokens", "every entry must be name=token")
		case !operatorNameRE.MatchString(name):
			add("operator_tokens", "operator name %q must match %s", name, operatorNameRE)
		case seen[name]:
			add("operator_tokens", "operator %q is listed twice", name)
		case len(tok) < minTokenLen:
			add("operator_tokens", "the token of %s must be at least %d characters", name, minTokenLen)
		case service[tok]:
			add("operator_tokens", "the token of %s is also a service token in api_tokens", name)
		}
		seen[name] = true
	}
}

// operatorEntry is an operator_tokens entry.
func operatorEntry(name, token string) Secret { return Secret(fmt.Sprintf("%s=%s", name, token)) }
