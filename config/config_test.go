package config_test

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
)

const validDB = "postgres://crmflow:hunter2@db.internal:5432/crmflow"

// testMasterKey is a master key of these tests' own (base64 of 32 bytes):
// the documented dev one is refused outside dev.
const testMasterKey = "Y29uZmlnLXRlc3QtbWFzdGVyLWtleS0zMi1ieXRlcyE="

func load(t *testing.T, opts config.LoadOptions, env ...string) (*config.Config, error) {
	t.Helper()
	if opts.Environ == nil {
		opts.Environ = env
	}
	return config.Load(opts)
}

func TestDefaults(t *testing.T) {
	cfg, err := load(t, config.LoadOptions{Dev: true}, "X=1")
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", cfg.HTTPAddr)
	assert.Equal(t, "127.0.0.1:7233", cfg.Temporal.Address)
	assert.Equal(t, "default", cfg.Temporal.Namespace)
	assert.Equal(t, 55432, cfg.Dev.PostgresPort)
	assert.Equal(t, "127.0.0.1:8233", cfg.Dev.UIAddr)
	assert.Equal(t, int64(1<<20), cfg.Webhooks.MaxBodyBytes)
	assert.Equal(t, 5*time.Minute, cfg.Webhooks.Tolerance)
	assert.Equal(t, []string{"knock", "resend", "simplelogin", "stripe"}, cfg.ConsoleProviders())
	// Dev mode fills in the documented dev secrets.
	assert.Equal(t, []config.Secret{config.DevAPIToken}, cfg.APITokens)
	assert.Equal(t, config.DevStripeWebhookSecret, cfg.Stripe.WebhookSecret.Reveal())
}

func TestEnvOverridesFileOverridesDefaults(t *testing.T) {
	file := filepath.Join(t.TempDir(), "crmflow.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`
http_addr: 0.0.0.0:9000
database_url: `+validDB+`
temporal:
  namespace: from-file
stripe:
  api_url: http://127.0.0.1:12111
knock:
  api_key: sk_file
`), 0o600))
	cfg, err := load(t, config.LoadOptions{File: file},
		"CRMFLOW_TEMPORAL_NAMESPACE=from-env",
		"CRMFLOW_API_TOKENS= tok-a , tok-b,,",
		"CRMFLOW_STRIPE_WEBHOOK_SECRET=whsec_abc",
		"CRMFLOW_MASTER_KEY="+testMasterKey,
	)
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0:9000", cfg.HTTPAddr, "file beats default")
	assert.Equal(t, "from-env", cfg.Temporal.Namespace, "env beats file")
	assert.Equal(t, "http://127.0.0.1:12111", cfg.Stripe.APIURL)
	assert.Equal(t, "sk_file", cfg.Knock.APIKey.Reveal())
	assert.Equal(t, []config.Secret{"tok-a", "tok-b"}, cfg.APITokens)
	assert.Equal(t, "whsec_abc", cfg.Stripe.WebhookSecret.Reveal())
	assert.NotContains(t, cfg.ConsoleProviders(), "knock")
}

func TestConfigFileFromEnv(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"database_url":"`+validDB+`","log_level":"debug"}`), 0o600))
	cfg, err := load(t, config.LoadOptions{}, "CRMFLOW_CONFIG="+file, "CRMFLOW_MASTER_KEY="+testMasterKey)
	require.NoError(t, err)
	assert.Equal(t, "debug", cfg.LogLevel)
}

func TestMissingConfigFileIsAnError(t *testing.T) {
	_, err := load(t, config.LoadOptions{File: "/nonexistent/crmflow.yaml"}, "X=1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "/nonexistent/crmflow.yaml")
}

func TestValidateNamesEveryBadKeyAtOnce(t *testing.T) {
	_, err := load(t, config.LoadOptions{},
		"CRMFLOW_HTTP_ADDR=not-an-address",
		"CRMFLOW_MASTER_KEY=too-short",
		"CRMFLOW_MASTER_KEY_PREVIOUS=also-short",
		"CRMFLOW_KNOCK_API_URL=ftp://knock",
		"CRMFLOW_WEBHOOKS_TOLERANCE=soon",
		"CRMFLOW_DEV_POSTGRES_PORT=lots",
		"CRMFLOW_LOG_LEVEL=loud",
		"CRMFLOW_STRIPE_WEBHOOK_SECRET=nope",
	)
	require.Error(t, err)
	require.True(t, config.IsValidation(err), "got %T: %v", err, err)
	msg := err.Error()
	for _, want := range []string{
		"http_addr (CRMFLOW_HTTP_ADDR)",
		"database_url (CRMFLOW_DATABASE_URL): required",
		"master_key (CRMFLOW_MASTER_KEY)",
		"master_key_previous (CRMFLOW_MASTER_KEY_PREVIOUS)",
		"knock.api_url (CRMFLOW_KNOCK_API_URL)",
		"log_level (CRMFLOW_LOG_LEVEL)",
		"stripe.webhook_secret (CRMFLOW_STRIPE_WEBHOOK_SECRET)",
		"webhooks.tolerance",
		"dev.postgres_port",
	} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, "too-short", "a secret's value must not appear in an error")
}

func TestTracingOffByDefaultAndValidated(t *testing.T) {
	cfg, err := load(t, config.LoadOptions{Dev: true}, "X=1")
	require.NoError(t, err)
	assert.Equal(t, config.TracingOff, cfg.Tracing.Exporter, "tracing is off unless configured")
	assert.Equal(t, 1.0, cfg.Tracing.SampleRatio)

	cfg, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_TRACING_EXPORTER=otlp",
		"CRMFLOW_TRACING_ENDPOINT=http://otel-collector:4317", "CRMFLOW_TRACING_SAMPLE_RATIO=0.1")
	require.NoError(t, err)
	assert.Equal(t, config.TracingConfig{Exporter: "otlp", Endpoint: "http://otel-collector:4317", SampleRatio: 0.1}, cfg.Tracing)

	_, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_TRACING_EXPORTER=jaeger", "CRMFLOW_TRACING_SAMPLE_RATIO=2")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tracing.exporter (CRMFLOW_TRACING_EXPORTER)")
	assert.Contains(t, err.Error(), "tracing.sample_ratio (CRMFLOW_TRACING_SAMPLE_RATIO)")
	_, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_TRACING_EXPORTER=otlp", "CRMFLOW_TRACING_ENDPOINT=otel-collector:4317")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tracing.endpoint (CRMFLOW_TRACING_ENDPOINT)")
}

func TestValidConfigPasses(t *testing.T) {
	_, err := load(t, config.LoadOptions{}, "CRMFLOW_DATABASE_URL="+validDB,
		"CRMFLOW_MASTER_KEY="+testMasterKey,
		"CRMFLOW_CLERK_WEBHOOK_SECRET=whsec_Y29uZmlnLXRlc3QtY2xlcmstc2VjcmV0")
	require.NoError(t, err)
}

func TestSecretsNeverPrint(t *testing.T) {
	cfg, err := load(t, config.LoadOptions{},
		"CRMFLOW_DATABASE_URL="+validDB,
		"CRMFLOW_STRIPE_SECRET_KEY=sk_test_supersecret",
		"CRMFLOW_API_TOKENS=token-one,token-two",
		"CRMFLOW_SENTRY_DSN=https://key@sentry.example/1",
		"CRMFLOW_MASTER_KEY="+testMasterKey,
	)
	require.NoError(t, err)
	out, err := cfg.Redacted()
	require.NoError(t, err)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "stripe", cfg.Stripe.SecretKey, "cfg", cfg)
	for _, rendered := range []string{out, fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.Stripe.SecretKey), logged.String()} {
		for _, secret := range []string{"hunter2", "sk_test_supersecret", "token-one", "token-two", "key@sentry"} {
			assert.NotContains(t, rendered, secret)
		}
	}
	assert.Contains(t, out, "secret_key: '[redacted]'")
	assert.Contains(t, out, "http_addr: 127.0.0.1:8080")
}

func TestEveryKeyHasAnEnvVar(t *testing.T) {
	for _, key := range config.Keys() {
		assert.True(t, strings.HasPrefix(config.EnvVar(key), "CRMFLOW_"), key)
	}
	assert.Equal(t, "CRMFLOW_STRIPE_WEBHOOK_SECRET", config.EnvVar("stripe.webhook_secret"))
	// Each key set through its env var must change the loaded config.
	tlsFile := filepath.Join(t.TempDir(), "tls.pem")
	require.NoError(t, os.WriteFile(tlsFile, []byte("pem"), 0o600))
	base, err := load(t, config.LoadOptions{Dev: true}, "X=1")
	require.NoError(t, err)
	baseYAML, _ := base.Redacted()
	for _, key := range config.Keys() {
		val := "https://changed.example"
		switch {
		case key == "codec_ui_origins":
			val = "http://ui.example"
		case strings.HasSuffix(key, "_addr") || key == "temporal.address":
			val = "127.0.0.1:1"
		case key == "dev.postgres_port":
			val = "5"
		case key == "webhooks.max_body_bytes" || strings.HasSuffix(key, "_cents"):
			val = "7"
		case key == "webhooks.tolerance" || strings.HasSuffix(key, "_timeout") || strings.HasSuffix(key, "_window") || strings.HasSuffix(key, "_ttl") || strings.HasSuffix(key, "_every") || key == "rotation.interval" ||
			strings.HasPrefix(key, "inventory.") && !strings.HasSuffix(key, "_audience"):
			val = "7s"
		case key == "log_level":
			val = "error"
		case key == "master_key" || key == "master_key_previous":
			val = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
		case key == "database_url":
			val = "postgres://u@h/d"
		case key == "stripe.webhook_secret" || key == "clerk.webhook_secret":
			val = "whsec_Y2hhbmdlZA=="
		case key == "temporal.tls":
			val = "true"
		case strings.HasPrefix(key, "temporal.tls_") && strings.HasSuffix(key, "_file"):
			val = tlsFile
		case strings.HasPrefix(key, "limits.") || key == "breaker.threshold":
			val = "3"
		case key == "breaker.cooldown":
			val = "7s"
		case strings.HasPrefix(key, "retention."):
			val = "0" // keep for ever: valid whatever the other windows are
		case key == "tracing.exporter":
			val = "stdout"
		case key == "tracing.sample_ratio":
			val = "0.25"
		case key == "operator_tokens":
			val = "ops=token-of-ops-0123456789"
		}
		env := []string{config.EnvVar(key) + "=" + val}
		if key == "temporal.tls_cert_file" || key == "temporal.tls_key_file" {
			// A client certificate comes with its key.
			env = append(env, "CRMFLOW_TEMPORAL_TLS_CERT_FILE="+tlsFile, "CRMFLOW_TEMPORAL_TLS_KEY_FILE="+tlsFile)
		}
		cfg, err := load(t, config.LoadOptions{Dev: true}, env...)
		require.NoError(t, err, key)
		got, _ := cfg.Redacted()
		if strings.Contains(key, "secret") || strings.Contains(key, "key") && !strings.HasSuffix(key, "_file") || key == "database_url" || key == "sentry.dsn" || key == "api_tokens" || key == "operator_tokens" {
			if key == "master_key_previous" {
				assert.NotEqual(t, base.MasterKeyPrevious, cfg.MasterKeyPrevious)
				continue
			}
			// Redacted output may not change for secrets already set by dev
			// defaults; compare the raw struct instead.
			assert.NotEqual(t, fmt.Sprintf("%#v", reveal(base)), fmt.Sprintf("%#v", reveal(cfg)), key)
			continue
		}
		assert.NotEqual(t, baseYAML, got, "env var %s changed nothing", config.EnvVar(key))
	}
}

// reveal flattens every secret so two configs can be compared by value.
func reveal(c *config.Config) []string {
	out := []string{c.DatabaseURL.Reveal(), c.MasterKey.Reveal(), c.Stripe.SecretKey.Reveal(),
		c.Stripe.WebhookSecret.Reveal(), c.Clerk.WebhookSecret.Reveal(), c.Knock.APIKey.Reveal(),
		c.SimpleLogin.APIKey.Reveal(), c.Resend.APIKey.Reveal(), c.Sentry.DSN.Reveal(), c.Temporal.APIKey.Reveal()}
	for _, t := range append(append([]config.Secret(nil), c.APITokens...), c.OperatorTokens...) {
		out = append(out, t.Reveal())
	}
	return out
}

// TestDevSecretsAreRefusedOutsideDev: the documented dev secrets protect
// nothing (they are in the README), so outside `crmflow dev` each one is
// refused by name, without quoting it; `crmflow dev` still fills them in.
func TestDevSecretsAreRefusedOutsideDev(t *testing.T) {
	env := []string{
		"CRMFLOW_DATABASE_URL=" + validDB,
		"CRMFLOW_MASTER_KEY=" + config.DevMasterKey,
		"CRMFLOW_API_TOKENS=tok-mine," + config.DevAPIToken,
		"CRMFLOW_STRIPE_WEBHOOK_SECRET=" + config.DevStripeWebhookSecret,
		"CRMFLOW_CLERK_WEBHOOK_SECRET=" + config.DevClerkWebhookSecret,
	}
	_, err := load(t, config.LoadOptions{}, env...)
	require.Error(t, err)
	require.True(t, config.IsValidation(err), "got %T: %v", err, err)
	for _, key := range []string{"master_key (CRMFLOW_MASTER_KEY)", "api_tokens (CRMFLOW_API_TOKENS)",
		"stripe.webhook_secret (CRMFLOW_STRIPE_WEBHOOK_SECRET)", "clerk.webhook_secret (CRMFLOW_CLERK_WEBHOOK_SECRET)"} {
		assert.Contains(t, err.Error(), key)
	}
	for _, secret := range []string{config.DevMasterKey, config.DevAPIToken, config.DevStripeWebhookSecret, config.DevClerkWebhookSecret} {
		assert.NotContains(t, err.Error(), secret)
	}

	_, err = load(t, config.LoadOptions{Dev: true}, env...)
	assert.NoError(t, err, "crmflow dev accepts its own defaults")
}

// TestOperatorIsDevOnlyAgainstTheDevStack: an operator command's config is
// dev (dev defaults filled in) only while neither a database URL nor a
// Temporal address is configured, by the environment or the config file;
// otherwise it needs the deployment's master key and start-API token.
func TestOperatorIsDevOnlyAgainstTheDevStack(t *testing.T) {
	cfg, err := load(t, config.LoadOptions{Operator: true}, "X=1", "CRMFLOW_DATABASE_URL=")
	require.NoError(t, err)
	assert.True(t, cfg.DevMode, "the dev stack: no set-up needed")
	assert.Equal(t, config.DevMasterKey, cfg.MasterKey.Reveal())
	assert.Equal(t, []config.Secret{config.DevAPIToken}, cfg.APITokens)

	file := filepath.Join(t.TempDir(), "crmflow.yaml")
	require.NoError(t, os.WriteFile(file, []byte("database_url: "+validDB+"\n"), 0o600))
	for name, opts := range map[string]struct {
		file string
		env  []string
	}{
		"database URL in the environment": {env: []string{"CRMFLOW_DATABASE_URL=" + validDB}},
		"Temporal address":                {env: []string{"CRMFLOW_DATABASE_URL=" + validDB, "CRMFLOW_TEMPORAL_ADDRESS=127.0.0.1:7233"}},
		"database URL in the config file": {file: file, env: []string{"X=1"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg, err := load(t, config.LoadOptions{Operator: true, File: opts.file}, opts.env...)
			require.Error(t, err)
			assert.False(t, cfg.DevMode)
			assert.Contains(t, err.Error(), "master_key (CRMFLOW_MASTER_KEY): required")
			assert.Contains(t, err.Error(), "api_tokens (CRMFLOW_API_TOKENS): required")
			assert.Empty(t, cfg.MasterKey, "no dev default is filled in")
			assert.Empty(t, cfg.APITokens)
			assert.Empty(t, cfg.Stripe.WebhookSecret)

			cfg, err = load(t, config.LoadOptions{Operator: true, File: opts.file},
				append(opts.env, "CRMFLOW_MASTER_KEY="+testMasterKey, "CRMFLOW_API_TOKENS=tok-prod")...)
			require.NoError(t, err)
			assert.False(t, cfg.DevMode)
		})
	}

	_, err = load(t, config.LoadOptions{Operator: true}, "CRMFLOW_TEMPORAL_ADDRESS=temporal.internal:7233")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "master_key (CRMFLOW_MASTER_KEY): required", "a Temporal address alone is not dev either")
	// A blank URL is a target too (pgx would fill it in from PG* variables),
	// never a reason to fall back to the dev secrets.
	cfg, err = load(t, config.LoadOptions{Operator: true}, "CRMFLOW_DATABASE_URL= ")
	require.Error(t, err)
	assert.False(t, cfg.DevMode)
	assert.Contains(t, err.Error(), "master_key (CRMFLOW_MASTER_KEY): required")
}

// TestDevUIOriginFollowsItsAddress: the codec's CORS origins default to the
// embedded UI's own address under `crmflow dev` (so a moved UI still
// decodes payloads), and to none anywhere else.
func TestDevUIOriginFollowsItsAddress(t *testing.T) {
	cfg, err := load(t, config.LoadOptions{Dev: true}, "CRMFLOW_DEV_UI_ADDR=127.0.0.1:9233")
	require.NoError(t, err)
	assert.Equal(t, []string{"http://127.0.0.1:9233", "http://localhost:9233"}, cfg.CodecUIOrigins)
	cfg, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_DEV_UI_ADDR=0.0.0.0:8233", "CRMFLOW_CODEC_UI_ORIGINS=https://ui.example.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"https://ui.example.com"}, cfg.CodecUIOrigins, "configured origins win")
	cfg, err = load(t, config.LoadOptions{}, "CRMFLOW_DATABASE_URL=postgres://u@h/d", "CRMFLOW_MASTER_KEY="+testMasterKey,
		"CRMFLOW_API_TOKENS=svc-token-0123456789")
	require.NoError(t, err)
	assert.Empty(t, cfg.CodecUIOrigins, "no browser origin is trusted outside dev unless configured")
}

// TestDevOperatorTokenIsRefusedOutsideDev: the documented dev operator
// token is public, so outside dev it is refused like the other dev secrets.
func TestDevOperatorTokenIsRefusedOutsideDev(t *testing.T) {
	_, err := load(t, config.LoadOptions{}, "CRMFLOW_DATABASE_URL=postgres://u@h/d", "CRMFLOW_MASTER_KEY="+testMasterKey,
		"CRMFLOW_API_TOKENS=svc-token-0123456789", "CRMFLOW_OPERATOR_TOKENS=dev="+config.DevOperatorToken)
	require.ErrorContains(t, err, "operator_tokens")
}

func TestStripeReconcileRunsOnlyWithAKeyAndAnInterval(t *testing.T) {
	cfg, err := load(t, config.LoadOptions{Dev: true}, "X=1")
	require.NoError(t, err)
	assert.Equal(t, 15*time.Minute, cfg.Stripe.ReconcileEvery, "every 15 minutes by default")
	assert.False(t, cfg.ReconcilesStripe(), "console mode (no Stripe key) never reconciles")

	cfg, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_STRIPE_SECRET_KEY=sk_test_123")
	require.NoError(t, err)
	assert.True(t, cfg.ReconcilesStripe())
	out, err := cfg.Redacted()
	require.NoError(t, err)
	assert.Contains(t, out, "reconcile_every: 15m0s", "`crmflow config` shows it")

	cfg, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_STRIPE_SECRET_KEY=sk_test_123", "CRMFLOW_STRIPE_RECONCILE_EVERY=0")
	require.NoError(t, err)
	assert.False(t, cfg.ReconcilesStripe(), "0 turns it off")

	_, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_STRIPE_RECONCILE_EVERY=-1m")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stripe.reconcile_every (CRMFLOW_STRIPE_RECONCILE_EVERY): must be 0 (off) or a positive duration")
}
