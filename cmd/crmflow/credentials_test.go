package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testenv"
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
