package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/doctortest"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
	"github.com/crmflow/crmflow/worker"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// doctorEnv points crmflow's config at a migrated database, a namespace of
// the test's own with search attributes and the worker's schedules, and the
// provider stand-ins, with a Stripe key (stripe-mock) and the given Knock
// key; the keys are seeded into the credential store as a worker start
// seeds them.
func doctorEnv(t *testing.T, knockKey string) {
	ns, tc := doctortest.Namespace(t, true)
	peers := doctortest.NewPeers(t)
	dbURL := testenv.DatabaseURL(t)
	for k, v := range map[string]string{
		"CRMFLOW_DATABASE_URL":        dbURL,
		"CRMFLOW_MASTER_KEY":          testenv.MasterKey,
		"CRMFLOW_TEMPORAL_ADDRESS":    testenv.Temporal(t).FrontendAddr(),
		"CRMFLOW_TEMPORAL_NAMESPACE":  ns,
		"CRMFLOW_STRIPE_API_URL":      testenv.StripeMockURL(t),
		"CRMFLOW_STRIPE_SECRET_KEY":   doctortest.StripeKey,
		"CRMFLOW_KNOCK_API_URL":       peers.Knock.URL,
		"CRMFLOW_KNOCK_API_KEY":       knockKey,
		"CRMFLOW_SIMPLELOGIN_API_URL": peers.SimpleLogin.URL,
		"CRMFLOW_RESEND_API_URL":      peers.Resend.URL,
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.Load(config.LoadOptions{})
	require.NoError(t, err)
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	defer st.Close()
	keys, err := credentials.KeyringOf(cfg.MasterKeys())
	require.NoError(t, err)
	require.NoError(t, credentials.NewStore(st, keys, credentials.Options{}).SeedAll(ctx, cfg.ConfiguredKeys()))
	doctortest.Eventually(t, "create schedules", func(ctx context.Context) error { return worker.EnsureSchedules(ctx, tc, cfg, "") })
}

// runDoctor runs `crmflow doctor` in process and returns its output and the
// error main turns into exit status 1.
func runDoctor(t *testing.T) (string, error) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"doctor", "--timeout", "30s"})
	err := cmd.Execute()
	t.Log("\n" + out.String())
	return out.String(), err
}

// TestDoctorGoodSetup: one "ok" line per check and exit status 0.
func TestDoctorGoodSetup(t *testing.T) {
	doctorEnv(t, doctortest.KnockKey)
	out, err := runDoctor(t)
	require.NoError(t, err)

	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var names []string
	for _, l := range lines {
		m := regexp.MustCompile(`^ok   (\S+) +\S`).FindStringSubmatch(l)
		require.NotNil(t, m, "not an ok line: %q", l)
		names = append(names, m[1])
	}
	assert.Equal(t, []string{"config", "postgres", "temporal", "search-attributes", "schedules", "stripe", "knock", "simplelogin", "resend", "tokens"}, names)
	assert.Regexp(t, `(?m)^ok   postgres +migrated to \d+$`, out)
	assert.Contains(t, out, "ok   knock              key accepted (GET /v1/users/crmflow-key-check); key from the credential store (knock/api_key@v1)\n")
	assert.Contains(t, out, "ok   resend             console mode: no key, calls are recorded, not sent; set resend.api_key (CRMFLOW_RESEND_API_KEY) to send for real\n")
	assertNoSecrets(t, out, doctortest.KnockKey)
}

// TestDoctorBadKey: a key Knock rejects is one FAIL line saying what to do,
// and the command fails (exit status 1) without printing the key.
func TestDoctorBadKey(t *testing.T) {
	doctorEnv(t, "sk_test_knock_key_that_was_revoked")
	out, err := runDoctor(t)
	require.Error(t, err)
	assert.Equal(t, "doctor: 1 of 10 checks failed", err.Error())
	assert.Contains(t, out, "FAIL knock              401 Unauthorized: Knock rejects the key in the credential store (knock/api_key@v1) (authentication_required); "+
		"rotate it: `crmflow rotation start knock`, then pipe a working key into `crmflow rotation submit-key knock`\n")
	assert.Equal(t, 1, strings.Count(out, "FAIL "), "only the bad key fails")
	assertNoSecrets(t, out, "sk_test_knock_key_that_was_revoked")
}

func assertNoSecrets(t *testing.T, out string, knockKey string) {
	t.Helper()
	for _, secret := range []string{knockKey, doctortest.StripeKey, config.DevMasterKey, testenv.MasterKey} {
		assert.NotContains(t, out, secret)
	}
}
