package credentials

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/crmflow/crmflow/internal/providers"
)

// Token slots in the store. Service tokens are provider "crmflow": the
// rotated one named "api_token", further configured ones "api_token_<n>".
// Operator tokens are provider "crmflow_operator", one name per operator.
const (
	OperatorTokenProvider = "crmflow_operator"
)

// Scope is what a token may do.
type Scope int

// Scopes, each including the ones before it.
const (
	// ScopeNone is no token, or one that is not valid now.
	ScopeNone Scope = iota
	// ScopeService may start, signal and read workflows (backend services).
	ScopeService
	// ScopeOperator may do everything operators do: dead-letter decisions,
	// key rotations, inbox replay, payload encoding, the console.
	ScopeOperator
)

// String names the scope as error messages and audit rows do.
func (s Scope) String() string {
	switch s {
	case ScopeService:
		return "service"
	case ScopeOperator:
		return "operator"
	}
	return "none"
}

// Principal is who presented a valid token.
type Principal struct {
	Scope Scope
	// Name is the operator's name for an operator token ("alice"), or the
	// token's credential name for a service token ("api_token").
	Name string
	// Subject is the token's version, as the audit log names it.
	Subject string
	// Pending is true for a start-API token a rotation generated and has not
	// activated yet: its first use is what the rotation waits for.
	Pending bool
	// Version is the token's version.
	Version int
}

// ErrUnauthenticated means no valid token was presented.
var ErrUnauthenticated = errors.New("no valid token")

// lastUsedEvery spaces the last_used_at writes of one token version.
const lastUsedEvery = time.Minute

// tokenSet is every token valid now, decrypted, with what it grants.
type tokenSet struct {
	tokens []tokenEntry
}

type tokenEntry struct {
	secret    []byte
	principal Principal
}

// Authenticate finds who token belongs to among every token valid now:
// service tokens (active, retiring within their grace period, or pending
// from a rotation) and operator tokens (active or retiring). A revoked or
// expired token is ErrUnauthenticated, as is an empty one. Every valid
// token is compared in constant time, and all of them, so the answer's
// timing says nothing about which token was close.
func (s *Store) Authenticate(ctx context.Context, token string) (Principal, error) {
	p, err := s.Identify(ctx, token)
	if err == nil {
		s.noteUse(ctx, p)
	}
	return p, err
}

// Identify is Authenticate without recording the token's use: for checks
// that are not a use, such as comparing config with the store at start.
func (s *Store) Identify(ctx context.Context, token string) (Principal, error) {
	set, err := s.tokenSet(ctx)
	if err != nil {
		return Principal{}, err
	}
	got := []byte(token)
	found, match := 0, -1
	for i, t := range set.tokens {
		eq := subtle.ConstantTimeCompare(got, t.secret)
		found |= eq
		if eq == 1 {
			match = i
		}
	}
	if token == "" || found != 1 {
		return Principal{}, ErrUnauthenticated
	}
	return set.tokens[match].principal, nil
}

// tokenSet reads the valid tokens, through the cache.
func (s *Store) tokenSet(ctx context.Context) (tokenSet, error) {
	token := providers.CrmflowToken().Key.Provider
	service, err := s.validAll(ctx, token, true)
	if err != nil {
		return tokenSet{}, fmt.Errorf("service tokens: %w", err)
	}
	operators, err := s.validAll(ctx, OperatorTokenProvider, false)
	if err != nil {
		return tokenSet{}, fmt.Errorf("operator tokens: %w", err)
	}
	var set tokenSet
	now := time.Now()
	for _, c := range service {
		if c.Status == StatusPending && !rotationToken(c, now) {
			continue
		}
		set.tokens = append(set.tokens, tokenEntry{secret: []byte(c.Secret.Reveal()), principal: Principal{
			Scope: ScopeService, Name: c.Name, Subject: c.Subject(), Version: c.Version, Pending: c.Status == StatusPending,
		}})
	}
	for _, c := range operators {
		set.tokens = append(set.tokens, tokenEntry{secret: []byte(c.Secret.Reveal()), principal: Principal{
			Scope: ScopeOperator, Name: c.Name, Subject: c.Subject(), Version: c.Version,
		}})
	}
	return set, nil
}

// PendingTokenLifetime is how long a start-API token a rotation generated
// is accepted while still pending: longer than the rotation waits for its
// first use (workflows.KeyRotationTokenPickupTimeout), after which the
// rotation has activated or revoked it.
const PendingTokenLifetime = 2 * time.Hour

// rotationToken reports whether a pending service token is one a rotation
// generated (CreateToken records the run as its external id), young enough
// to be awaiting its first use. Any other pending version is not a token.
func rotationToken(c Credential, now time.Time) bool {
	return strings.HasPrefix(c.ExternalID, "rotation:") && now.Sub(c.CreatedAt) < PendingTokenLifetime
}

// validAll is Valid over every name of provider; with pending, pending
// versions count too (a start-API token a rotation generated).
func (s *Store) validAll(ctx context.Context, provider string, pending bool) ([]Credential, error) {
	kind := kindValid
	if pending {
		kind = kindValidPending
	}
	if got, ok := s.cache.get(kind, provider, "*"); ok {
		return stillValid(got, time.Now()), nil
	}
	gen := s.cache.generation()
	q := `SELECT ` + columns + ` FROM credentials
WHERE provider = $1
  AND (status = 'active' OR (status = 'retiring' AND retire_after > now()) OR ($2 AND status = 'pending'))
ORDER BY name, version`
	creds, err := s.query(ctx, true, q, provider, pending)
	if err != nil {
		return nil, err
	}
	s.cache.put(gen, kind, provider, "*", creds)
	return stillValid(creds, time.Now()), nil
}

// noteUse records that p's token was accepted, at most once a minute per
// version: how a rotation learns its new token is in use, and how operators
// see which tokens still are. Its failure never fails the request.
func (s *Store) noteUse(ctx context.Context, p Principal) {
	s.usedMu.Lock()
	last := s.used[p.Subject]
	now := time.Now()
	if now.Sub(last) < lastUsedEvery {
		s.usedMu.Unlock()
		return
	}
	s.used[p.Subject] = now
	s.usedMu.Unlock()
	provider, name, version, ok := splitSubject(p.Subject)
	if !ok {
		return
	}
	// A token's first use is audited: it is when a rotated token is picked
	// up, and an unexpected first use of an old token is worth seeing.
	const q = `
WITH prev AS (
    SELECT last_used_at FROM credentials WHERE provider = $1 AND name = $2 AND version = $3)
UPDATE credentials SET last_used_at = now()
WHERE provider = $1 AND name = $2 AND version = $3
RETURNING (SELECT last_used_at IS NULL FROM prev)`
	ctx = context.WithoutCancel(ctx)
	var first bool
	if err := s.pool.QueryRow(ctx, q, provider, name, version).Scan(&first); err != nil || !first {
		return
	}
	const audit = `INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, 'credential.first_use', $2, $3)`
	_, _ = s.pool.Exec(ctx, audit, p.Name, p.Subject, map[string]any{"scope": p.Scope.String()})
}

// LastUsed is when a version was last accepted as a token (to the minute);
// zero when never.
func (s *Store) LastUsed(ctx context.Context, provider, name string, version int) (time.Time, error) {
	const q = `SELECT last_used_at FROM credentials WHERE provider = $1 AND name = $2 AND version = $3`
	var at *time.Time
	if err := s.pool.QueryRow(ctx, q, provider, name, version).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("last use of %s: %w", subject(provider, name, version), err)
	}
	if at == nil {
		return time.Time{}, nil
	}
	return *at, nil
}

// splitSubject parses "provider/name@vN".
func splitSubject(subj string) (provider, name string, version int, ok bool) {
	pn, v, ok := strings.Cut(subj, "@v")
	if !ok {
		return "", "", 0, false
	}
	provider, name, ok = strings.Cut(pn, "/")
	if _, err := fmt.Sscanf(v, "%d", &version); err != nil {
		return "", "", 0, false
	}
	return provider, name, version, ok
}

// usage is the per-process memory of noteUse.
type usage struct {
	usedMu sync.Mutex
	used   map[string]time.Time
}
