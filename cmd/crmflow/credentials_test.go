package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/doctortest"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// TestCredentialsRewrap: after a master-key rotation `crmflow credentials
// rewrap` re-encrypts what the old key sealed, so the store opens with the
// new key alone; a second run has nothing left to do.
func TestCredentialsRewrap(t *testing.T) {
	const oldKey = "b2xkLW1hc3Rlci1rZXktb2YtdGhpcnR5LXR3byFfXyE="
	const newKey = "bmV3LW1hc3Rlci1rZXktb2YtdGhpcnR5LXR3byFfXyE="
	dbURL := testenv.DatabaseURL(t)
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	defer st.Close()
	old, err := credentials.NewKeyring(oldKey)
	require.NoError(t, err)
	_, err = credentials.NewStore(st, old, credentials.Options{CacheTTL: -1}).SeedFromConfig(ctx, "knock", "api_key", "sk_test_rewrap")
	require.NoError(t, err)

	t.Setenv("CRMFLOW_DATABASE_URL", dbURL)
	t.Setenv("CRMFLOW_MASTER_KEY", newKey)
	t.Setenv("CRMFLOW_MASTER_KEY_PREVIOUS", oldKey)
	// Outside dev, an operator command needs the deployment's start-API token.
	t.Setenv("CRMFLOW_API_TOKENS", "test-token")
	rewrap := func() string {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs([]string{"credentials", "rewrap"})
		require.NoError(t, cmd.Execute(), out.String())
		return out.String()
	}
	assert.Contains(t, rewrap(), "re-encrypted 1 stored credential(s)")
	assert.Contains(t, rewrap(), "re-encrypted 0 stored credential(s)")

	fresh, err := credentials.NewKeyring(newKey)
	require.NoError(t, err)
	c, err := credentials.NewStore(st, fresh, credentials.Options{CacheTTL: -1}).Active(ctx, "knock", "api_key")
	require.NoError(t, err, "the new key alone opens the credential")
	assert.Equal(t, "sk_test_rewrap", c.Secret.Reveal())
}

// TestCredentialsSet: a key the provider accepts is stored and active at
// once (the one before it retiring); a key it refuses stores nothing.
func TestCredentialsSet(t *testing.T) {
	peers := doctortest.NewPeers(t)
	dbURL := testenv.DatabaseURL(t)
	t.Setenv("CRMFLOW_DATABASE_URL", dbURL)
	t.Setenv("CRMFLOW_MASTER_KEY", testenv.MasterKey)
	// Outside dev, an operator command needs the deployment's start-API token.
	t.Setenv("CRMFLOW_API_TOKENS", "test-token")
	t.Setenv("CRMFLOW_KNOCK_API_URL", peers.Knock.URL)
	set := func(provider, key string) (string, error) {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetIn(strings.NewReader(key + "\n"))
		cmd.SetArgs([]string{"credentials", "set", provider})
		err := cmd.Execute()
		return out.String(), err
	}
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	defer st.Close()
	keys, err := credentials.NewKeyring(testenv.MasterKey)
	require.NoError(t, err)
	creds := credentials.NewStore(st, keys, credentials.Options{CacheTTL: -1})

	_, err = set("knock", "sk_test_refused")
	assert.ErrorContains(t, err, "knock refused the key")
	_, err = creds.Active(ctx, "knock", "api_key")
	assert.ErrorIs(t, err, store.ErrNotFound, "a refused key is not stored")

	out, err := set("knock", doctortest.KnockKey)
	require.NoError(t, err, out)
	assert.Contains(t, out, "knock key version 1 is active")
	assert.NotContains(t, out, doctortest.KnockKey, "the key is never printed")
	c, err := creds.Active(ctx, "knock", "api_key")
	require.NoError(t, err)
	assert.Equal(t, doctortest.KnockKey, c.Secret.Reveal())

	out, err = set("clerk_webhook", "whsec_c2V0LWJ5LW9wZXJhdG9y")
	require.NoError(t, err, out)
	_, err = set("mailgun", "x")
	assert.ErrorContains(t, err, "unknown provider")
	_, err = set("knock", "")
	assert.ErrorContains(t, err, "no key on stdin")
}
