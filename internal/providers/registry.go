// Package providers is the one list of the providers crmflow talks to and
// the keys it holds: per provider, its name and title, where its key lives
// in the credential store and in config, whether its activities have a
// task queue of their own, its client constructor, its cheapest
// authenticated call (Check), and whether and how its key rotates. The
// breaker's probes, `crmflow doctor`, key verification during a rotation,
// the rotation Schedules, credential seeding and config validation all
// read it. Adding a provider means one new file here, plus its client.
//
// It is a library: it imports contract (for the names), the provider
// clients, their HTTP base (providerhttp) and SDKs, and nothing else of
// crmflow's.
package providers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// Rotation is how a provider's key is rotated.
type Rotation int

// Rotations.
const (
	// RotationNone: the key is not rotated by crmflow.
	RotationNone Rotation = iota
	// RotationAutomatic: crmflow creates the new key through the provider's
	// key API, verifies it, and deletes the old one (Resend).
	RotationAutomatic
	// RotationToken: crmflow generates its own start-API token and hands it
	// out once.
	RotationToken
	// RotationManual: an operator submits the new key and confirms the old
	// one was revoked at the provider (human in the loop).
	RotationManual
)

// Slot is a key's place in the credential store.
type Slot struct {
	Provider string
	Name     string
}

// DefaultKeyName is the credential name of a provider's API key.
const DefaultKeyName = "api_key"

// Provider is what crmflow knows of one provider, or of one key it holds.
type Provider struct {
	// Name is the provider's one spelling in task queues, workflow IDs,
	// search attributes, config sections and the CLI, e.g. "simplelogin".
	Name string
	// Title is how people write it, and the prefix of its activities'
	// error types, e.g. "SimpleLogin" (SimpleLoginRateLimited).
	Title string
	// Key is the key's place in the credential store.
	Key Slot
	// ConfigKey is the config key that seeds the store, e.g.
	// "knock.api_key"; "" when config never sets it.
	ConfigKey string
	// URLKey is the config key of the provider's API base URL ("" none).
	URLKey string
	// Queue is true for providers whose activities run on a task queue of
	// their own, with the provider's rate limit and breaker.
	Queue bool
	// Rotation says whether and how the key rotates.
	Rotation Rotation
	// KeyPrefixes are the prefixes a submitted key must start with (none:
	// any); a cheap check before the provider is asked.
	KeyPrefixes []string
	// Webhook is true for a webhook signing secret: it only verifies
	// deliveries, cannot be checked with the provider, and a new one
	// becomes active only once a genuine delivery verified with it.
	Webhook bool
	// Probe names the cheapest authenticated call, e.g. "GET /v1/balance";
	// "" when the key cannot be checked remotely.
	Probe string
	// check makes Probe with key against the API at baseURL.
	check func(ctx context.Context, hc *http.Client, baseURL, key string) (Verdict, error)
	// checkForm checks the form of a key that cannot be checked remotely
	// (webhook signing secrets); it returns why the key is wrong, or "".
	checkForm func(key string) string
}

// all is every provider and key, in the order they are reported.
var all = []Provider{stripe, knock, simpleLogin, resend, stripeWebhook, clerkWebhook, resendWebhook, crmflowToken}

// All lists every provider and key crmflow holds, in report order.
func All() []Provider { return slices.Clone(all) }

// Queued lists the providers whose activities have their own task queue.
func Queued() []Provider {
	var out []Provider
	for _, p := range all {
		if p.Queue {
			out = append(out, p)
		}
	}
	return out
}

// Lookup finds a provider by name.
func Lookup(name string) (Provider, bool) {
	for _, p := range all {
		if p.Name == name {
			return p, true
		}
	}
	return Provider{}, false
}

// Rotated reports whether crmflow rotates the provider's key.
func (p Provider) Rotated() bool { return p.Rotation != RotationNone }

// Checkable reports whether the key can be checked with the provider.
func (p Provider) Checkable() bool { return p.check != nil }

// defaultTimeout bounds a check when the caller gives no HTTP client.
const defaultTimeout = 10 * time.Second

// Check makes the provider's cheapest authenticated call with key against
// baseURL and reads the answer as a verdict. An error means there is no
// verdict (network failure, timeout, 429, 5xx, an answer that is not the
// provider's); neither it nor the verdict ever quotes the key. Key rotation
// checks a candidate key with it, the breaker probes a provider with it,
// and crmflow doctor checks the active key.
func (p Provider) Check(ctx context.Context, hc *http.Client, baseURL, key string) (Verdict, error) {
	if p.check == nil {
		return Verdict{}, fmt.Errorf("no key check for provider %q", p.Name)
	}
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	v, err := p.check(ctx, hc, baseURL, key)
	// Belt and braces: whatever a provider or a proxy echoed, the key does
	// not leave this function.
	v.Reason = scrub(v.Reason, key)
	if err != nil {
		return v, errors.New(scrub(fmt.Sprintf("%s %s: %v", p.Name, p.Probe, err), key))
	}
	return v, nil
}

// CheckForm says why key is not a key of the provider by its form alone,
// or "" when its form is fine or cannot be told (API keys).
func (p Provider) CheckForm(key string) string {
	if p.checkForm == nil {
		return ""
	}
	return p.checkForm(key)
}

// HasKeyPrefix reports whether key starts with one of the provider's key
// prefixes (any key does when it has none).
func (p Provider) HasKeyPrefix(key string) bool {
	return len(p.KeyPrefixes) == 0 ||
		slices.ContainsFunc(p.KeyPrefixes, func(pre string) bool { return strings.HasPrefix(key, pre) })
}

// VerifyKey decides whether a candidate key may replace the current one:
// by its form where it cannot be checked remotely (webhook signing
// secrets), else by the provider's own answer. reason says why a key is
// refused and never quotes it; an error means no verdict could be had.
func (p Provider) VerifyKey(ctx context.Context, hc *http.Client, baseURL, key string) (ok bool, reason string, err error) {
	if p.checkForm != nil {
		if why := p.checkForm(key); why != "" {
			return false, why, nil
		}
		return true, "", nil
	}
	v, err := p.Check(ctx, hc, baseURL, key)
	switch {
	case err != nil:
		return false, "", fmt.Errorf("check %s key: %w", p.Name, err)
	case !v.Valid && v.Reason != "":
		return false, v.Status + " (" + v.Reason + ")", nil
	case !v.Valid:
		return false, v.Status, nil
	}
	return true, "", nil
}

// ClientOptions build a provider's API client.
type ClientOptions struct {
	// BaseURL is the API's origin ("" for the provider's default).
	BaseURL string
	// Key returns the key to send at each call, so a rotated key is used
	// without a restart. Outside console mode, "" fails the call (the
	// provider's ErrNoAPIKey, classified CredentialMissing): nothing is
	// recorded in its place.
	Key func(ctx context.Context) (string, error)
	// Console is console mode, decided once when the worker starts, from
	// config (the provider has no configured key): every call is recorded,
	// nothing is sent and Key is never asked. It is never decided per call,
	// so a configured provider whose key is revoked fails its calls instead
	// of faking their success.
	Console bool
	// HTTPClient carries the calls (metrics, timeouts).
	HTTPClient *http.Client
	// Logger receives console-mode records.
	Logger *slog.Logger
}

// consoleOr returns a client option that records every call, logged to
// o.Logger as component name, in console mode, and otherwise one that
// reads the key from o.Key at each call. The provider clients take
// providerhttp's options under their own names, so one helper serves both.
func (o ClientOptions) consoleOr(name string) providerhttp.Option {
	if o.Console {
		logger := o.Logger
		if logger == nil {
			logger = slog.Default()
		}
		// No key func: a console client without one records every call.
		return providerhttp.WithConsole(providerhttp.LogRecorder{Logger: logger.With("component", name)})
	}
	return providerhttp.WithAPIKeyFunc(o.Key)
}
