package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// countingListener accepts TCP connections on loopback, closes them at once
// and counts them: a stand-in for PostgreSQL or Temporal that tells whether
// a command tried to connect at all.
func countingListener(t *testing.T) (addr string, accepted *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	accepted = &atomic.Int32{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return l.Addr().String(), accepted
}

// crmflowOperator runs one crmflow command in process with key on stdin.
func crmflowOperator(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

// clearOperatorEnv leaves none of the settings these tests are about to the
// environment the tests run in: each is unset (t.Setenv restores it after).
func clearOperatorEnv(t *testing.T) {
	for _, k := range []string{"CRMFLOW_DATABASE_URL", "CRMFLOW_TEMPORAL_ADDRESS", "CRMFLOW_MASTER_KEY", "CRMFLOW_API_TOKENS",
		"CRMFLOW_STRIPE_WEBHOOK_SECRET", "CRMFLOW_CLERK_WEBHOOK_SECRET", "CRMFLOW_CONFIG"} {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
}

// TestOperatorCommandsOutsideDevNeedTheirOwnSecrets: an operator command
// pointed at a database or a Temporal of its own (CRMFLOW_DATABASE_URL or
// CRMFLOW_TEMPORAL_ADDRESS) is not talking to the dev stack, so it must not
// fill in the public dev secrets: without a master key and a start-API
// token it fails naming both, before it connects to anything (so a
// production secret is never sealed under the dev master key).
func TestOperatorCommandsOutsideDevNeedTheirOwnSecrets(t *testing.T) {
	commands := map[string][]string{
		"credentials set": {"credentials", "set", "knock", "--no-check"},
		"dlq list":        {"dlq", "list"},
		"inbox list":      {"inbox", "list"},
		"inbox replay":    {"inbox", "replay", "1"},
		"status":          {"status", "order-confirmation/o1"},
		"rotation start":  {"rotation", "start", "stripe"},
	}
	for _, target := range []string{"CRMFLOW_DATABASE_URL", "CRMFLOW_TEMPORAL_ADDRESS"} {
		for name, args := range commands {
			t.Run(target+"/"+name, func(t *testing.T) {
				clearOperatorEnv(t)
				addr, accepted := countingListener(t)
				if target == "CRMFLOW_DATABASE_URL" {
					t.Setenv(target, "postgres://crmflow@"+addr+"/crmflow?sslmode=disable&connect_timeout=2")
				} else {
					t.Setenv(target, addr)
				}
				out, err := crmflowOperator(t, "sk_test_production\n", args...)
				require.Error(t, err, out)
				assert.Contains(t, err.Error(), "master_key (CRMFLOW_MASTER_KEY)")
				assert.Contains(t, err.Error(), "api_tokens (CRMFLOW_API_TOKENS)")
				assert.Zero(t, accepted.Load(), "nothing is connected to before the configuration is complete")
			})
		}
	}
}

// TestOperatorCommandsRefuseDevSecretsOutsideDev: the documented dev
// secrets, configured by hand for a production database, are refused by
// name, and nothing is stored.
func TestOperatorCommandsRefuseDevSecretsOutsideDev(t *testing.T) {
	clearOperatorEnv(t)
	dbURL := testenv.DatabaseURL(t)
	t.Setenv("CRMFLOW_DATABASE_URL", dbURL)
	t.Setenv("CRMFLOW_MASTER_KEY", config.DevMasterKey)
	t.Setenv("CRMFLOW_API_TOKENS", config.DevAPIToken)
	t.Setenv("CRMFLOW_STRIPE_WEBHOOK_SECRET", config.DevStripeWebhookSecret)
	t.Setenv("CRMFLOW_CLERK_WEBHOOK_SECRET", config.DevClerkWebhookSecret)
	out, err := crmflowOperator(t, "sk_test_production\n", "credentials", "set", "knock", "--no-check")
	require.Error(t, err, out)
	for _, key := range []string{"master_key (CRMFLOW_MASTER_KEY)", "api_tokens (CRMFLOW_API_TOKENS)",
		"stripe.webhook_secret (CRMFLOW_STRIPE_WEBHOOK_SECRET)", "clerk.webhook_secret (CRMFLOW_CLERK_WEBHOOK_SECRET)"} {
		assert.Contains(t, err.Error(), key)
	}
	assert.Contains(t, err.Error(), "dev default")

	st, err := store.Open(context.Background(), dbURL)
	require.NoError(t, err)
	defer st.Close()
	keys, err := credentials.NewKeyring(testenv.MasterKey)
	require.NoError(t, err)
	versions, err := credentials.NewStore(st, keys, credentials.Options{CacheTTL: -1}).Versions(context.Background(), "knock", "api_key")
	require.NoError(t, err)
	assert.Empty(t, versions, "nothing was sealed under the dev master key")
}

// TestOperatorCommandsWithoutTargetUseTheDevStack: with neither a database
// URL nor a Temporal address configured, an operator command still works
// against `crmflow dev` with no set-up: it uses the dev stack's PostgreSQL
// (here a stand-in on the configured dev port) and its documented defaults.
func TestOperatorCommandsWithoutTargetUseTheDevStack(t *testing.T) {
	clearOperatorEnv(t)
	addr, accepted := countingListener(t)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	_, err = strconv.Atoi(port)
	require.NoError(t, err)
	t.Setenv("CRMFLOW_DEV_POSTGRES_PORT", port)
	out, err := crmflowOperator(t, "", "dlq", "list")
	require.Error(t, err, "the stand-in is no PostgreSQL: %s", out)
	assert.NotContains(t, err.Error(), "CRMFLOW_MASTER_KEY", "the dev defaults apply")
	assert.Positive(t, accepted.Load(), "it went to the dev stack's PostgreSQL")
}
