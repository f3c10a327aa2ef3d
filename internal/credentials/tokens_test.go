package credentials_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/credentials"
)

// TestAuthenticateByScope: every token valid now authenticates with its
// scope and name; revoked, expired, unknown and empty tokens do not; a
// pending start-API token counts only when a rotation generated it.
func TestAuthenticateByScope(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{Grace: time.Hour})
	s := f.creds
	require.NoError(t, s.SeedTokens(ctx, []string{"service-one-0123456789", "service-two-0123456789"},
		map[string]string{"alice": "alice-token-0123456789", "bob": "bob-token-0123456789"}))

	for token, want := range map[string]credentials.Principal{
		"service-one-0123456789": {Scope: credentials.ScopeService, Name: "api_token", Subject: "crmflow/api_token@v1", Version: 1},
		"service-two-0123456789": {Scope: credentials.ScopeService, Name: "api_token_2", Subject: "crmflow/api_token_2@v1", Version: 1},
		"alice-token-0123456789": {Scope: credentials.ScopeOperator, Name: "alice", Subject: "crmflow_operator/alice@v1", Version: 1},
	} {
		got, err := s.Authenticate(ctx, token)
		require.NoError(t, err, token)
		assert.Equal(t, want, got, token)
	}
	for _, bad := range []string{"", "nope", "alice-token-012345678", "alice-token-0123456789 ", "ALICE-TOKEN-0123456789"} {
		_, err := s.Authenticate(ctx, bad)
		assert.ErrorIs(t, err, credentials.ErrUnauthenticated, "%q", bad)
	}

	// Revoked: refused at once.
	require.NoError(t, s.Revoke(ctx, credentials.OperatorTokenProvider, "bob", 1))
	_, err := s.Authenticate(ctx, "bob-token-0123456789")
	assert.ErrorIs(t, err, credentials.ErrUnauthenticated, "a revoked operator token")

	// A pending version put by hand is no token.
	_, err = s.Put(ctx, "crmflow", "api_token", "hand-put-pending-0123456789", credentials.StatusPending)
	require.NoError(t, err)
	_, err = s.Authenticate(ctx, "hand-put-pending-0123456789")
	assert.ErrorIs(t, err, credentials.ErrUnauthenticated, "a pending token not made by a rotation")

	// A rotation's pending token is accepted, marked pending, for its
	// first use.
	v, err := s.PutWithExternalID(ctx, "crmflow", "api_token", "rotated-pending-0123456789", "rotation:run-1", credentials.StatusPending)
	require.NoError(t, err)
	got, err := s.Authenticate(ctx, "rotated-pending-0123456789")
	require.NoError(t, err)
	assert.Equal(t, credentials.Principal{Scope: credentials.ScopeService, Name: "api_token", Subject: "crmflow/api_token@v3",
		Version: v, Pending: true}, got)
	used, err := s.LastUsed(ctx, "crmflow", "api_token", v)
	require.NoError(t, err)
	assert.False(t, used.IsZero(), "its use is recorded")
}

// TestIdentifyRecordsNoUse: Identify answers as Authenticate does but is no
// use of the token.
func TestIdentifyRecordsNoUse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{})
	require.NoError(t, f.creds.SeedTokens(ctx, []string{"service-one-0123456789"}, nil))
	p, err := f.creds.Identify(ctx, "service-one-0123456789")
	require.NoError(t, err)
	assert.Equal(t, credentials.ScopeService, p.Scope)
	used, err := f.creds.LastUsed(ctx, "crmflow", "api_token", 1)
	require.NoError(t, err)
	assert.True(t, used.IsZero())
	_, err = f.creds.Identify(ctx, "other")
	assert.True(t, errors.Is(err, credentials.ErrUnauthenticated))
}

// TestFirstUseIsAudited: a token's first use, and only that, writes an
// audit row naming who used it.
func TestFirstUseIsAudited(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, credentials.Options{})
	require.NoError(t, f.creds.SeedTokens(ctx, nil, map[string]string{"carol": "carol-token-0123456789"}))
	for range 3 {
		_, err := f.creds.Authenticate(ctx, "carol-token-0123456789")
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, f.db.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_log
		WHERE action = 'credential.first_use' AND actor = 'carol' AND subject = 'crmflow_operator/carol@v1'`).Scan(&n))
	assert.Equal(t, 1, n)
}
