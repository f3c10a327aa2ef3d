// Package config loads crmflow's one typed configuration: defaults, then an
// optional config file, then CRMFLOW_* environment variables, in that order of
// precedence. Secrets are of type Secret, which never prints its value.
//
// config may import contract and internal/providers (which keys a provider
// has), nothing else of crmflow's: every room may import it.
package config

import (
	"time"
)

// EnvPrefix is the prefix of every environment variable crmflow reads.
const EnvPrefix = "CRMFLOW"

// Config is crmflow's whole configuration. The mapstructure tags are the keys
// of the config file; nested keys map to env vars by joining with "_", so
// stripe.webhook_secret is CRMFLOW_STRIPE_WEBHOOK_SECRET.
type Config struct {
	// HTTPAddr is where webhooks, the start API, health and metrics listen.
	HTTPAddr string `mapstructure:"http_addr" yaml:"http_addr"`
	// DatabaseURL is the PostgreSQL connection URL. Empty under `crmflow dev`
	// means: start an embedded PostgreSQL.
	DatabaseURL Secret `mapstructure:"database_url" yaml:"database_url"`
	// APITokens are the initial service tokens: backend services start,
	// signal and read workflows with them. They seed the credential store,
	// which is the truth afterwards.
	APITokens []Secret `mapstructure:"api_tokens" yaml:"api_tokens"`
	// OperatorTokens are the initial operator tokens, "name=token" each:
	// dead-letter decisions, key rotations, inbox replay, the console. They
	// seed the credential store too.
	OperatorTokens []Secret `mapstructure:"operator_tokens" yaml:"operator_tokens"`
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
	Retention RetentionConfig `mapstructure:"retention" yaml:"retention"`

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

// MasterKeys are the master key and then its predecessors, revealed, for
// the keyring that seals credentials and payloads.
func (c *Config) MasterKeys() []string {
	out := []string{c.MasterKey.Reveal()}
	for _, k := range c.MasterKeyPrevious {
		out = append(out, k.Reveal())
	}
	return out
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

// StripeConfig holds Stripe's API key, webhook secret and base URL, and
// how often its events are reconciled.
type StripeConfig struct {
	SecretKey     Secret `mapstructure:"secret_key" yaml:"secret_key"`
	WebhookSecret Secret `mapstructure:"webhook_secret" yaml:"webhook_secret"`
	APIURL        string `mapstructure:"api_url" yaml:"api_url"`
	// ReconcileEvery is how often the stripe-reconcile Schedule lists
	// Stripe's recent events to store those whose webhook never arrived;
	// 0 turns it off. It runs only with a secret key (never in console
	// mode).
	ReconcileEvery time.Duration `mapstructure:"reconcile_every" yaml:"reconcile_every"`
}

// ReconcilesStripe reports whether the stripe-reconcile Schedule runs: a
// Stripe secret key is configured (Stripe is not in console mode) and
// stripe.reconcile_every is not 0.
func (c *Config) ReconcilesStripe() bool {
	return c.Stripe.SecretKey != "" && c.Stripe.ReconcileEvery > 0
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
