// Package config loads crmflow's one typed configuration: defaults, then an
// optional config file, then CRMFLOW_* environment variables, in that order of
// precedence. Secrets are of type Secret, which never prints its value.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/viper"
)

// EnvPrefix is the prefix of every environment variable crmflow reads.
const EnvPrefix = "CRMFLOW"

// Dev defaults: documented, printed at start, and only ever applied by
// `crmflow dev`, so that `crmflow demo` works with no set-up.
const (
	DevAPIToken            = "dev-api-token"
	DevStripeWebhookSecret = "whsec_crmflow_dev_stripe_secret"
	// DevClerkWebhookSecret is a Svix secret: "whsec_" plus base64 key bytes.
	DevClerkWebhookSecret = "whsec_Y3JtZmxvdy1kZXYtY2xlcmstd2ViaG9vay1rZXk="
	// DevMasterKey is base64 of 32 bytes; it protects nothing of value.
	DevMasterKey = "Y3JtZmxvdy1kZXYtbWFzdGVyLWtleS0zMi1ieXRlcyE="
)

// Config is crmflow's whole configuration. The mapstructure tags are the keys
// of the config file; nested keys map to env vars by joining with "_", so
// stripe.webhook_secret is CRMFLOW_STRIPE_WEBHOOK_SECRET.
type Config struct {
	// HTTPAddr is where webhooks, the start API, health and metrics listen.
	HTTPAddr string `mapstructure:"http_addr" yaml:"http_addr"`
	// DatabaseURL is the PostgreSQL connection URL. Empty under `crmflow dev`
	// means: start an embedded PostgreSQL.
	DatabaseURL Secret `mapstructure:"database_url" yaml:"database_url"`
	// APITokens are the initial bearer tokens accepted by the start API.
	APITokens []Secret `mapstructure:"api_tokens" yaml:"api_tokens"`
	// MasterKey is base64 of the 32-byte AES-256-GCM key that encrypts stored
	// credentials and every workflow payload.
	MasterKey Secret `mapstructure:"master_key" yaml:"master_key"`
	// MasterKeyPrevious are earlier master keys, still accepted for
	// decryption while the master key itself is rotated.
	MasterKeyPrevious []Secret `mapstructure:"master_key_previous" yaml:"master_key_previous"`
	// CodecUIOrigins are the Temporal UI origins the codec endpoint answers
	// (CORS), so the UI can decode payloads through crmflow.
	CodecUIOrigins []string `mapstructure:"codec_ui_origins" yaml:"codec_ui_origins"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `mapstructure:"log_level" yaml:"log_level"`

	Temporal  TemporalConfig  `mapstructure:"temporal" yaml:"temporal"`
	Dev       DevConfig       `mapstructure:"dev" yaml:"dev"`
	Webhooks  WebhooksConfig  `mapstructure:"webhooks" yaml:"webhooks"`
	Orders    OrdersConfig    `mapstructure:"orders" yaml:"orders"`
	Referrals ReferralsConfig `mapstructure:"referrals" yaml:"referrals"`
	Inventory InventoryConfig `mapstructure:"inventory" yaml:"inventory"`
	Aliases   AliasesConfig   `mapstructure:"aliases" yaml:"aliases"`
	Rotation  RotationConfig  `mapstructure:"rotation" yaml:"rotation"`
	Limits    LimitsConfig    `mapstructure:"limits" yaml:"limits"`
	Breaker   BreakerConfig   `mapstructure:"breaker" yaml:"breaker"`

	Stripe      StripeConfig   `mapstructure:"stripe" yaml:"stripe"`
	Clerk       ClerkConfig    `mapstructure:"clerk" yaml:"clerk"`
	Knock       ProviderConfig `mapstructure:"knock" yaml:"knock"`
	SimpleLogin ProviderConfig `mapstructure:"simplelogin" yaml:"simplelogin"`
	Resend      ProviderConfig `mapstructure:"resend" yaml:"resend"`
	Sentry      SentryConfig   `mapstructure:"sentry" yaml:"sentry"`
	Tracing     TracingConfig  `mapstructure:"tracing" yaml:"tracing"`

	// DevMode is set by LoadOptions.Dev, never by the file or environment.
	DevMode bool `mapstructure:"-" yaml:"-"`
}

// TemporalConfig says how to reach the Temporal cluster.
type TemporalConfig struct {
	// Address is the frontend host:port; under `crmflow dev` the embedded
	// server listens here.
	Address string `mapstructure:"address" yaml:"address"`
	// Namespace holds every crmflow workflow.
	Namespace string `mapstructure:"namespace" yaml:"namespace"`
	// TLS connects over TLS with the system's CAs; it is implied by an API
	// key, a client certificate or a CA file.
	TLS bool `mapstructure:"tls" yaml:"tls"`
	// TLSCertFile and TLSKeyFile are a PEM client certificate and key for
	// mTLS (a self-hosted cluster requiring them, or Temporal Cloud's
	// certificate authentication).
	TLSCertFile string `mapstructure:"tls_cert_file" yaml:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file" yaml:"tls_key_file"`
	// TLSCAFile is a PEM bundle of CAs to trust instead of the system's.
	TLSCAFile string `mapstructure:"tls_ca_file" yaml:"tls_ca_file"`
	// TLSServerName overrides the server name checked in its certificate.
	TLSServerName string `mapstructure:"tls_server_name" yaml:"tls_server_name"`
	// APIKey authenticates to Temporal Cloud (API-key authentication).
	APIKey Secret `mapstructure:"api_key" yaml:"api_key"`
}

// UsesTLS reports whether the Temporal connection is made over TLS.
func (t TemporalConfig) UsesTLS() bool {
	return t.TLS || t.APIKey != "" || t.TLSCertFile != "" || t.TLSCAFile != ""
}

// DevConfig configures the embedded stack of `crmflow dev`.
type DevConfig struct {
	// DataDir holds the Temporal SQLite file and the PostgreSQL data.
	DataDir string `mapstructure:"data_dir" yaml:"data_dir"`
	// PostgresPort is the embedded PostgreSQL's port on 127.0.0.1.
	PostgresPort int `mapstructure:"postgres_port" yaml:"postgres_port"`
	// UIAddr is where the embedded Temporal UI listens.
	UIAddr string `mapstructure:"ui_addr" yaml:"ui_addr"`
}

// WebhooksConfig bounds what the webhook endpoints accept.
type WebhooksConfig struct {
	// MaxBodyBytes is the largest body accepted; larger gets 413.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes" yaml:"max_body_bytes"`
	// Tolerance is how old (or new) a signature timestamp may be.
	Tolerance time.Duration `mapstructure:"tolerance" yaml:"tolerance"`
}

// OrdersConfig tunes the order confirmation.
type OrdersConfig struct {
	// PaymentTimeout is how long an order waits for a successful payment.
	PaymentTimeout time.Duration `mapstructure:"payment_timeout" yaml:"payment_timeout"`
}

// ReferralsConfig tunes referral rewards.
type ReferralsConfig struct {
	// RewardCents is credited to the referrer in the order's currency.
	RewardCents int64 `mapstructure:"reward_cents" yaml:"reward_cents"`
	// RefundWindow holds the reward before it is paid.
	RefundWindow time.Duration `mapstructure:"refund_window" yaml:"refund_window"`
	// MinimumOrderCents: a partial refund leaving the order below it voids.
	MinimumOrderCents int64 `mapstructure:"minimum_order_cents" yaml:"minimum_order_cents"`
	// ClawbackWindow: a refund this long after payout asks an operator.
	ClawbackWindow time.Duration `mapstructure:"clawback_window" yaml:"clawback_window"`
}

// InventoryConfig holds the low-stock defaults (each SKU may override them
// in the products table) and the inventory scan's interval.
type InventoryConfig struct {
	ScanInterval       time.Duration `mapstructure:"scan_interval" yaml:"scan_interval"`
	Debounce           time.Duration `mapstructure:"debounce" yaml:"debounce"`
	Cooldown           time.Duration `mapstructure:"cooldown" yaml:"cooldown"`
	EscalateAfter      time.Duration `mapstructure:"escalate_after" yaml:"escalate_after"`
	AlertAudience      []string      `mapstructure:"alert_audience" yaml:"alert_audience"`
	EscalationAudience []string      `mapstructure:"escalation_audience" yaml:"escalation_audience"`
	// CoalesceWindow is how long the edge gathers stock updates of one SKU
	// before handing the latest to its workflow.
	CoalesceWindow time.Duration `mapstructure:"coalesce_window" yaml:"coalesce_window"`
}

// AliasesConfig tunes email aliases.
type AliasesConfig struct {
	// ShadowTTL is how long a shadow alias (made before sign-up) waits to be
	// claimed before it is deleted.
	ShadowTTL time.Duration `mapstructure:"shadow_ttl" yaml:"shadow_ttl"`
}

// RotationConfig schedules key rotations.
type RotationConfig struct {
	// Interval is how often each configured provider's key is rotated (or,
	// for providers without a key API, operators are asked to rotate it).
	Interval time.Duration `mapstructure:"interval" yaml:"interval"`
}

// LimitsConfig bounds each provider's activity task queue. The defaults
// follow the providers' published limits: Stripe's test mode allows 25
// operations a second (live mode 100), Knock's identify tier 60 a second,
// SimpleLogin 5 alias creations a minute per caller IP, Resend 2 requests a
// second per team.
type LimitsConfig struct {
	Stripe      QueueLimitConfig `mapstructure:"stripe" yaml:"stripe"`
	Knock       QueueLimitConfig `mapstructure:"knock" yaml:"knock"`
	SimpleLogin QueueLimitConfig `mapstructure:"simplelogin" yaml:"simplelogin"`
	Resend      QueueLimitConfig `mapstructure:"resend" yaml:"resend"`
}

// QueueLimitConfig bounds one provider's activity task queue.
type QueueLimitConfig struct {
	// PerSecond is how many of the provider's activities start per second
	// across every worker replica (Temporal enforces it); 0 means no limit.
	PerSecond float64 `mapstructure:"per_second" yaml:"per_second"`
	// Concurrency bounds the provider's activities one worker runs at once;
	// 0 means the SDK's default.
	Concurrency int `mapstructure:"concurrency" yaml:"concurrency"`
}

// BreakerConfig says when a failing provider's activity queue is paused.
type BreakerConfig struct {
	// Threshold is how many outage failures in a row (5xx, 429, timeouts)
	// pause the provider's queue; 0 never pauses.
	Threshold int `mapstructure:"threshold" yaml:"threshold"`
	// Cooldown is how long a paused queue waits before probing the provider.
	Cooldown time.Duration `mapstructure:"cooldown" yaml:"cooldown"`
}

// StripeConfig holds Stripe's API key, webhook secret and base URL.
type StripeConfig struct {
	SecretKey     Secret `mapstructure:"secret_key" yaml:"secret_key"`
	WebhookSecret Secret `mapstructure:"webhook_secret" yaml:"webhook_secret"`
	APIURL        string `mapstructure:"api_url" yaml:"api_url"`
}

// ClerkConfig holds the Svix signing secret of Clerk's webhook endpoint.
type ClerkConfig struct {
	WebhookSecret Secret `mapstructure:"webhook_secret" yaml:"webhook_secret"`
}

// ProviderConfig is an API key and base URL of a provider called over REST.
type ProviderConfig struct {
	APIKey Secret `mapstructure:"api_key" yaml:"api_key"`
	APIURL string `mapstructure:"api_url" yaml:"api_url"`
}

// SentryConfig enables error reporting when DSN is set.
type SentryConfig struct {
	DSN         Secret `mapstructure:"dsn" yaml:"dsn"`
	Environment string `mapstructure:"environment" yaml:"environment"`
	Release     string `mapstructure:"release" yaml:"release"`
}

// Tracing exporters.
const (
	// TracingOff builds no tracer provider at all: nothing is recorded.
	TracingOff = ""
	// TracingOTLP sends spans over OTLP/gRPC to Endpoint.
	TracingOTLP = "otlp"
	// TracingStdout writes one JSON line per span to stdout (local debugging).
	TracingStdout = "stdout"
)

// TracingConfig chooses where OpenTelemetry spans go; off by default.
type TracingConfig struct {
	// Exporter is "" (off), "otlp" or "stdout".
	Exporter string `mapstructure:"exporter" yaml:"exporter"`
	// Endpoint is the OTLP/gRPC collector URL; http:// sends without TLS.
	Endpoint string `mapstructure:"endpoint" yaml:"endpoint"`
	// SampleRatio is the share of new traces recorded (0..1); a request that
	// arrives with a sampled parent is always recorded.
	SampleRatio float64 `mapstructure:"sample_ratio" yaml:"sample_ratio"`
}

// defaults lists every key with its default. Viper only maps env vars onto keys
// it knows, so every key is here, even those whose default is empty.
var defaults = map[string]any{
	"http_addr":                      "127.0.0.1:8080",
	"database_url":                   "",
	"api_tokens":                     "",
	"master_key":                     "",
	"master_key_previous":            "",
	"codec_ui_origins":               "http://127.0.0.1:8233,http://localhost:8233",
	"log_level":                      "info",
	"temporal.address":               "127.0.0.1:7233",
	"temporal.namespace":             "default",
	"temporal.tls":                   false,
	"temporal.tls_cert_file":         "",
	"temporal.tls_key_file":          "",
	"temporal.tls_ca_file":           "",
	"temporal.tls_server_name":       "",
	"temporal.api_key":               "",
	"dev.data_dir":                   ".data",
	"dev.postgres_port":              55432,
	"dev.ui_addr":                    "127.0.0.1:8233",
	"webhooks.max_body_bytes":        1 << 20,
	"webhooks.tolerance":             "5m",
	"orders.payment_timeout":         "24h",
	"referrals.reward_cents":         1000,
	"referrals.refund_window":        "336h",
	"referrals.minimum_order_cents":  1000,
	"referrals.clawback_window":      "2160h",
	"inventory.scan_interval":        "15m",
	"inventory.debounce":             "5m",
	"inventory.cooldown":             "1h",
	"inventory.escalate_after":       "24h",
	"inventory.alert_audience":       "crmflow-operators",
	"inventory.escalation_audience":  "crmflow-operators",
	"inventory.coalesce_window":      "1s",
	"aliases.shadow_ttl":             "720h",
	"rotation.interval":              "2160h",
	"limits.stripe.per_second":       25,
	"limits.stripe.concurrency":      10,
	"limits.knock.per_second":        60,
	"limits.knock.concurrency":       20,
	"limits.simplelogin.per_second":  5.0 / 60,
	"limits.simplelogin.concurrency": 1,
	"limits.resend.per_second":       2,
	"limits.resend.concurrency":      2,
	"breaker.threshold":              5,
	"breaker.cooldown":               "30s",
	"stripe.secret_key":              "",
	"stripe.webhook_secret":          "",
	"stripe.api_url":                 "https://api.stripe.com",
	"clerk.webhook_secret":           "",
	"knock.api_key":                  "",
	"knock.api_url":                  "https://api.knock.app",
	"simplelogin.api_key":            "",
	"simplelogin.api_url":            "https://app.simplelogin.io",
	"resend.api_key":                 "",
	"resend.api_url":                 "https://api.resend.com",
	"sentry.dsn":                     "",
	"sentry.environment":             "development",
	"sentry.release":                 "",
	"tracing.exporter":               "",
	"tracing.endpoint":               "http://127.0.0.1:4317",
	"tracing.sample_ratio":           1.0,
}

// Keys returns every configuration key, sorted, for documentation and tests.
func Keys() []string {
	keys := make([]string, 0, len(defaults))
	for k := range defaults {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// EnvVar returns the environment variable that sets key.
func EnvVar(key string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// LoadOptions say where the config comes from.
type LoadOptions struct {
	// File is an optional config file (YAML, JSON or TOML); empty means the
	// CRMFLOW_CONFIG env var, and no file if that is empty too.
	File string
	// Dev fills in the documented dev secrets where none are set.
	Dev bool
	// Environ replaces os.Environ when non-nil (tests).
	Environ []string
}

// Load resolves the configuration and validates it, returning every problem
// at once.
func Load(opts LoadOptions) (*Config, error) {
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}

	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	file := opts.File
	if file == "" {
		file = env[EnvPrefix+"_CONFIG"]
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config file %s: %w", file, err)
		}
	}
	// Env vars are applied by hand from the given environment instead of
	// viper.AutomaticEnv, so tests can pass their own without touching the
	// process environment.
	for _, k := range Keys() {
		if val, ok := env[EnvVar(k)]; ok {
			v.Set(k, val)
		}
	}

	var cfg Config
	var problems []string
	err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			splitCommaHook,
		)
		dc.WeaklyTypedInput = true
	})
	if err != nil {
		problems = append(problems, decodeProblems(err)...)
	}
	cfg.DevMode = opts.Dev
	if opts.Dev {
		cfg.applyDevDefaults()
	}
	if err := cfg.validate(problems); err != nil {
		return &cfg, err
	}
	return &cfg, nil
}

// splitCommaHook turns "a, b" into []string{"a","b"} for list keys set from
// env vars, dropping empty entries.
func splitCommaHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	var out []string
	for _, p := range strings.Split(data.(string), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// decodeProblems turns mapstructure's joined error into one line per key.
func decodeProblems(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
		if line == "" || strings.HasPrefix(line, "decoding failed due to") || strings.Contains(line, "error(s) decoding") {
			continue
		}
		out = append(out, line)
	}
	return out
}

func (c *Config) applyDevDefaults() {
	if len(c.APITokens) == 0 {
		c.APITokens = []Secret{DevAPIToken}
	}
	if c.Stripe.WebhookSecret == "" {
		c.Stripe.WebhookSecret = DevStripeWebhookSecret
	}
	if c.Clerk.WebhookSecret == "" {
		c.Clerk.WebhookSecret = DevClerkWebhookSecret
	}
	if c.MasterKey == "" {
		c.MasterKey = DevMasterKey
	}
}

// Validate checks every key and reports all problems in one error.
func (c *Config) Validate() error { return c.validate(nil) }

func (c *Config) validate(problems []string) error {
	add := func(key, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s (%s): %s", key, EnvVar(key), fmt.Sprintf(format, args...)))
	}
	checkHostPort := func(key, val string) {
		if _, port, err := net.SplitHostPort(val); err != nil || port == "" {
			add(key, "must be host:port, got %q", val)
		}
	}
	checkHostPort("http_addr", c.HTTPAddr)
	checkHostPort("temporal.address", c.Temporal.Address)
	checkHostPort("dev.ui_addr", c.Dev.UIAddr)
	if c.Temporal.Namespace == "" {
		add("temporal.namespace", "must not be empty")
	}
	if (c.Temporal.TLSCertFile == "") != (c.Temporal.TLSKeyFile == "") {
		add("temporal.tls_cert_file", "must be set together with temporal.tls_key_file (a client certificate and its key)")
	}
	for key, path := range map[string]string{
		"temporal.tls_cert_file": c.Temporal.TLSCertFile, "temporal.tls_key_file": c.Temporal.TLSKeyFile,
		"temporal.tls_ca_file": c.Temporal.TLSCAFile,
	} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			add(key, "cannot read %s: %v", path, errors.Unwrap(err))
		}
	}
	switch {
	case c.DatabaseURL != "":
		if _, err := pgx.ParseConfig(string(c.DatabaseURL)); err != nil {
			add("database_url", "not a PostgreSQL URL: %s", redactURLError(err))
		}
	case !c.DevMode:
		add("database_url", "required (only `crmflow dev` starts its own PostgreSQL)")
	}
	switch {
	case c.MasterKey == "" && !c.DevMode:
		add("master_key", "required: it encrypts stored credentials and workflow payloads (e.g. `openssl rand -base64 32`)")
	case c.MasterKey != "" && !isKey32(c.MasterKey):
		add("master_key", "must be base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)")
	}
	for _, k := range c.MasterKeyPrevious {
		if !isKey32(k) {
			add("master_key_previous", "every key must be base64 of exactly 32 bytes")
			break
		}
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		add("log_level", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.Dev.PostgresPort <= 0 || c.Dev.PostgresPort > 65535 {
		add("dev.postgres_port", "must be a TCP port, got %d", c.Dev.PostgresPort)
	}
	if c.Webhooks.MaxBodyBytes <= 0 {
		add("webhooks.max_body_bytes", "must be positive, got %d", c.Webhooks.MaxBodyBytes)
	}
	if c.Webhooks.Tolerance <= 0 {
		add("webhooks.tolerance", "must be a positive duration, got %s", c.Webhooks.Tolerance)
	}
	for key, val := range map[string]string{
		"stripe.api_url":      c.Stripe.APIURL,
		"knock.api_url":       c.Knock.APIURL,
		"simplelogin.api_url": c.SimpleLogin.APIURL,
		"resend.api_url":      c.Resend.APIURL,
	} {
		if u, err := url.Parse(val); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(key, "must be an http(s) URL, got %q", val)
		}
	}
	if c.Stripe.WebhookSecret != "" && !strings.HasPrefix(string(c.Stripe.WebhookSecret), "whsec_") {
		add("stripe.webhook_secret", "must start with whsec_")
	}
	if s := string(c.Clerk.WebhookSecret); s != "" {
		if _, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_")); err != nil {
			add("clerk.webhook_secret", "must be whsec_ followed by base64 (as Clerk shows it)")
		}
	}
	if c.Orders.PaymentTimeout <= 0 {
		add("orders.payment_timeout", "must be a positive duration, got %s", c.Orders.PaymentTimeout)
	}
	if c.Referrals.RewardCents <= 0 {
		add("referrals.reward_cents", "must be positive, got %d", c.Referrals.RewardCents)
	}
	if c.Referrals.MinimumOrderCents < 0 {
		add("referrals.minimum_order_cents", "must not be negative, got %d", c.Referrals.MinimumOrderCents)
	}
	if c.Referrals.RefundWindow <= 0 {
		add("referrals.refund_window", "must be a positive duration, got %s", c.Referrals.RefundWindow)
	}
	if c.Referrals.ClawbackWindow < 0 {
		add("referrals.clawback_window", "must not be negative, got %s", c.Referrals.ClawbackWindow)
	}
	for key, d := range map[string]time.Duration{
		"inventory.scan_interval": c.Inventory.ScanInterval, "inventory.escalate_after": c.Inventory.EscalateAfter,
		"inventory.coalesce_window": c.Inventory.CoalesceWindow,
	} {
		if d <= 0 {
			add(key, "must be a positive duration, got %s", d)
		}
	}
	for key, d := range map[string]time.Duration{"inventory.debounce": c.Inventory.Debounce, "inventory.cooldown": c.Inventory.Cooldown} {
		if d < 0 {
			add(key, "must not be negative, got %s", d)
		}
	}
	for name, l := range map[string]QueueLimitConfig{
		"stripe": c.Limits.Stripe, "knock": c.Limits.Knock, "simplelogin": c.Limits.SimpleLogin, "resend": c.Limits.Resend,
	} {
		if l.PerSecond < 0 {
			add("limits."+name+".per_second", "must be 0 (no limit) or positive, got %v", l.PerSecond)
		}
		if l.Concurrency < 0 {
			add("limits."+name+".concurrency", "must be 0 (SDK default) or positive, got %d", l.Concurrency)
		}
	}
	if c.Breaker.Threshold < 0 {
		add("breaker.threshold", "must be 0 (never pause) or positive, got %d", c.Breaker.Threshold)
	}
	if c.Breaker.Threshold > 0 && c.Breaker.Cooldown <= 0 {
		add("breaker.cooldown", "must be a positive duration, got %s", c.Breaker.Cooldown)
	}
	if c.Rotation.Interval <= 0 {
		add("rotation.interval", "must be a positive duration, got %s", c.Rotation.Interval)
	}
	if c.Aliases.ShadowTTL <= 0 {
		add("aliases.shadow_ttl", "must be a positive duration, got %s", c.Aliases.ShadowTTL)
	}
	switch c.Tracing.Exporter {
	case TracingOff, TracingStdout:
	case TracingOTLP:
		if u, err := url.Parse(c.Tracing.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("tracing.endpoint", "must be an http(s) URL of an OTLP/gRPC collector, got %q", c.Tracing.Endpoint)
		}
	default:
		add("tracing.exporter", "must be empty (off), otlp or stdout, got %q", c.Tracing.Exporter)
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		add("tracing.sample_ratio", "must be between 0 and 1, got %g", c.Tracing.SampleRatio)
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return &ValidationError{Problems: problems}
}

func isKey32(s Secret) bool {
	k, err := base64.StdEncoding.DecodeString(string(s))
	return err == nil && len(k) == 32
}

// redactURLError keeps a password in a malformed URL out of the message.
func redactURLError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "cannot parse `"); i >= 0 {
		return "cannot parse the URL"
	}
	return msg
}

// ValidationError lists every problem found in a configuration.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return "invalid configuration:\n  - " + strings.Join(e.Problems, "\n  - ")
}

// IsValidation reports whether err is a ValidationError.
func IsValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}

// RotatedProviders lists, in a fixed order, the keys a key-rotation Schedule
// exists for: crmflow's own start-API token always, every other provider's
// key or webhook secret when it is configured.
func (c *Config) RotatedProviders() []string {
	out := []string{"crmflow"}
	for _, k := range []struct {
		name string
		key  Secret
	}{
		{"resend", c.Resend.APIKey},
		{"stripe", c.Stripe.SecretKey},
		{"knock", c.Knock.APIKey},
		{"simplelogin", c.SimpleLogin.APIKey},
		{"stripe_webhook", c.Stripe.WebhookSecret},
		{"clerk_webhook", c.Clerk.WebhookSecret},
	} {
		if k.key != "" {
			out = append(out, k.name)
		}
	}
	return out
}

// ConsoleProviders lists the providers that have no API key and so run in
// console mode: their calls are recorded, not sent.
func (c *Config) ConsoleProviders() []string {
	var out []string
	for name, key := range map[string]Secret{
		"stripe":      c.Stripe.SecretKey,
		"knock":       c.Knock.APIKey,
		"simplelogin": c.SimpleLogin.APIKey,
		"resend":      c.Resend.APIKey,
	} {
		if key == "" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
