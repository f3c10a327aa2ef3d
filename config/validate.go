package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/crmflow/crmflow/internal/providers"
)

// Validate checks every key and reports all problems in one error.
func (c *Config) Validate() error { return c.validate(nil) }

func (c *Config) validate(problems []string) error {
	add := func(key, format string, args ...any) {
		problems = append(problems, problem(key, format, args...))
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
	if !c.DevMode {
		for _, key := range c.devDefaultsInUse() {
			add(key, "is crmflow's documented dev default, which is public and protects nothing: outside `crmflow dev` configure a secret of your own")
		}
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
	for _, p := range providers.All() {
		if p.URLKey == "" {
			continue
		}
		if val := c.StringAt(p.URLKey); !isHTTPURL(val) {
			add(p.URLKey, "must be an http(s) URL, got %q", val)
		}
	}
	for _, p := range providers.All() {
		if key := c.SecretAt(p.ConfigKey); key != "" {
			if why := p.CheckForm(key.Reveal()); why != "" {
				add(p.ConfigKey, "%s", why)
			}
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
	for _, p := range providers.Queued() {
		l := c.QueueLimitsAt("limits." + p.Name)
		if l.PerSecond < 0 {
			add("limits."+p.Name+".per_second", "must be 0 (no limit) or positive, got %v", l.PerSecond)
		}
		if l.Concurrency < 0 {
			add("limits."+p.Name+".concurrency", "must be 0 (SDK default) or positive, got %d", l.Concurrency)
		}
	}
	if c.Breaker.Threshold < 0 {
		add("breaker.threshold", "must be 0 (never pause) or positive, got %d", c.Breaker.Threshold)
	}
	if c.Breaker.Threshold > 0 && c.Breaker.Cooldown <= 0 {
		add("breaker.cooldown", "must be a positive duration, got %s", c.Breaker.Cooldown)
	}
	if c.Stripe.ReconcileEvery < 0 {
		add("stripe.reconcile_every", "must be 0 (off) or a positive duration, got %s", c.Stripe.ReconcileEvery)
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
		if !isHTTPURL(c.Tracing.Endpoint) {
			add("tracing.endpoint", "must be an http(s) URL of an OTLP/gRPC collector, got %q", c.Tracing.Endpoint)
		}
	default:
		add("tracing.exporter", "must be empty (off), otlp or stdout, got %q", c.Tracing.Exporter)
	}
	if c.Tracing.SampleRatio < 0 || c.Tracing.SampleRatio > 1 {
		add("tracing.sample_ratio", "must be between 0 and 1, got %g", c.Tracing.SampleRatio)
	}
	c.tokenProblems(add)
	c.retentionProblems(add)
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return &ValidationError{Problems: problems}
}

// problem is one line of a ValidationError: the key, the env var that sets
// it, and what is wrong, e.g. "master_key (CRMFLOW_MASTER_KEY): required".
func problem(key, format string, args ...any) string {
	return fmt.Sprintf("%s (%s): %s", key, EnvVar(key), fmt.Sprintf(format, args...))
}

// isHTTPURL reports whether s is an absolute http(s) URL with a host.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
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
