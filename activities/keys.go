package activities

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// KeySource hands out the credential currently active for a provider; the
// Resend and Stripe activities read their key through it. The credential
// store implements it; activities call it on every attempt, so a rotated key
// is used as soon as it is active, without a restart.
type KeySource interface {
	// ActiveKey returns the active credential name of provider (such as
	// ResendCredentialProvider, ResendCredentialName or
	// StripeCredentialProvider, StripeCredentialName). An empty key and a nil
	// error mean no version is active (never stored, or revoked): a caller
	// that is not in console mode fails with <Provider>CredentialMissing,
	// never falls back to console mode.
	ActiveKey(ctx context.Context, provider, name string) (string, error)
}

// ResendToken is a Resend API key's secret token. Every formatting path (fmt
// with any verb, slog) shows "[redacted]"; JSON keeps the value, because the
// token must reach the credential-store activity through the workflow's
// payloads, which crmflow's payload codec encrypts.
type ResendToken string

// redacted is what a secret looks like wherever it is printed or logged.
const redacted = "[redacted]"

// Reveal returns the token itself, for the one place that must use it.
func (t ResendToken) Reveal() string { return string(t) }

// String shows whether the token is set, never its value.
func (t ResendToken) String() string {
	if t == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (t ResendToken) GoString() string { return `activities.ResendToken("` + t.String() + `")` }

// Format keeps every fmt verb, %d and %x included, from printing the value;
// String alone covers only %v, %s and %q.
func (t ResendToken) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, t.GoString())
		return
	}
	_, _ = io.WriteString(f, t.String())
}

// LogValue keeps slog from printing the value.
func (t ResendToken) LogValue() slog.Value { return slog.StringValue(t.String()) }
