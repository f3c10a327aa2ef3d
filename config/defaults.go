package config

import (
	"sort"
	"strings"
)

// defaults lists every key with its default. Viper only maps env vars onto keys
// it knows, so every key is here, even those whose default is empty.
var defaults = map[string]any{
	"http_addr":                      "127.0.0.1:8080",
	"database_url":                   "",
	"api_tokens":                     "",
	"operator_tokens":                "",
	"master_key":                     "",
	"master_key_previous":            "",
	"codec_ui_origins":               "",
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
	"retention.inbox":                "720h",
	"retention.dedup":                "2160h",
	"retention.dead_letters":         "4320h",
	"retention.audit":                "9600h",
	"stripe.secret_key":              "",
	"stripe.webhook_secret":          "",
	"stripe.api_url":                 "https://api.stripe.com",
	"stripe.reconcile_every":         "15m",
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
