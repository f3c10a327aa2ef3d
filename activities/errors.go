package activities

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
)

// Stable error type names. They appear in workflow histories, dead letters and
// alerts, so they never change; add new ones instead.
const (
	// ErrTypeNotFound: the thing the step acts on does not exist.
	ErrTypeNotFound = "NotFound"
	// ErrTypeInvalid: the provider rejected the request as malformed (4xx).
	ErrTypeInvalid = "InvalidRequest"
	// ErrTypeAuth: the credential is missing, wrong, revoked or lacks permission.
	ErrTypeAuth = "AuthFailed"
	// ErrTypeConflict: the provider refuses for a reason a retry cannot fix,
	// such as an idempotency key reused with different parameters.
	ErrTypeConflict = "Conflict"
	// ErrTypeRateLimited: 429; retried after the provider's Retry-After.
	ErrTypeRateLimited = "RateLimited"
	// ErrTypeUnavailable: network error, timeout or 5xx; retried with backoff.
	ErrTypeUnavailable = "Unavailable"
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

// classifyHTTP maps an HTTP status from a provider to a classified error; it
// is shared by the REST clients that have no SDK of their own.
func classifyHTTP(provider string, status int, err error, retryAfter time.Duration) error {
	switch {
	case status == 429:
		return transient(provider, ErrTypeRateLimited, err, retryAfter)
	case status >= 500 || status == 408 || status == 0:
		// 0 means no response at all: a network error or timeout.
		return transient(provider, ErrTypeUnavailable, err, retryAfter)
	case status == 401 || status == 403:
		return permanent(provider, ErrTypeAuth, err)
	case status == 404:
		return permanent(provider, ErrTypeNotFound, err)
	case status == 409:
		return permanent(provider, ErrTypeConflict, err)
	default:
		return permanent(provider, ErrTypeInvalid, err)
	}
}
