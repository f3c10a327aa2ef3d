package activities

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// Stable error type names. They appear in workflow histories, dead letters and
// alerts, so they never change; add new ones instead. Each is the
// providerhttp.Kind of the same failure, so the activities and the provider
// clients' classification (providerhttp.Classify) name failures alike.
const (
	// ErrTypeNotFound: the thing the step acts on does not exist.
	ErrTypeNotFound = string(providerhttp.KindNotFound)
	// ErrTypeInvalid: the provider rejected the request as malformed (4xx).
	ErrTypeInvalid = string(providerhttp.KindInvalid)
	// ErrTypeAuth: the credential is missing, wrong, revoked or lacks permission.
	ErrTypeAuth = string(providerhttp.KindAuth)
	// ErrTypeConflict: the provider refuses for a reason a retry cannot fix,
	// such as an idempotency key reused with different parameters.
	ErrTypeConflict = string(providerhttp.KindConflict)
	// ErrTypeRateLimited: 429; retried after the provider's Retry-After.
	ErrTypeRateLimited = string(providerhttp.KindRateLimited)
	// ErrTypeUnavailable: network error, timeout or 5xx; retried with backoff.
	ErrTypeUnavailable = string(providerhttp.KindUnavailable)
	// ErrTypeCredentialMissing: the provider is configured (not in console
	// mode) but has no active key, e.g. it was revoked; nothing was sent.
	// Permanent: the step parks until an operator stores a key.
	ErrTypeCredentialMissing = string(providerhttp.KindCredentialMissing)
	// ErrTypeStoredFailure: the provider answered with a failure it stored
	// under the request's idempotency key (Stripe replays even a 500 for as
	// long as it keeps the key). Permanent for that key: only a request
	// with a fresh key gets a new answer. Stripe only, so no
	// providerhttp.Kind names it.
	ErrTypeStoredFailure = "StoredFailure"
)

// ErrorType builds the type name of a provider's error: "Knock" +
// "RateLimited" is "KnockRateLimited".
func ErrorType(provider, kind string) string { return provider + kind }

// permanent wraps err as a non-retryable application error of the given type.
func permanent(provider, kind string, err error) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s: %v", provider, err), ErrorType(provider, kind), err)
}

// transient wraps err as a retryable application error. A positive
// retryAfter becomes the next retry's delay, as the provider asked.
func transient(provider, kind string, err error, retryAfter time.Duration) error {
	return temporal.NewApplicationErrorWithOptions(
		fmt.Sprintf("%s: %v", provider, err), ErrorType(provider, kind),
		temporal.ApplicationErrorOptions{Cause: err, NextRetryDelay: retryAfter})
}

// classified wraps err as the application error c describes: of type
// provider + c.Kind, transient with c.RetryAfter as the next delay when
// c.Retryable, else permanent. c comes from providerhttp.Classify, or from
// providerhttp.ClassifyStatus for the REST clients that have no SDK.
func classified(provider string, c providerhttp.Class, err error) error {
	if c.Retryable {
		return transient(provider, string(c.Kind), err, c.RetryAfter)
	}
	return permanent(provider, string(c.Kind), err)
}

// credentialMissing is the permanent <provider>CredentialMissing of a
// configured provider that found no active key at call time. It replaces
// console mode's made-up answers, which would report a payment checked, a
// credit made or a key created when nothing was sent.
func credentialMissing(provider string) error {
	return permanent(provider, ErrTypeCredentialMissing, fmt.Errorf(
		"no active key in the credential store (revoked, or never stored): store one with `crmflow credentials set %s`, then retry the step",
		strings.ToLower(provider)))
}
