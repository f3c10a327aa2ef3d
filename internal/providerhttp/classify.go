package providerhttp

import (
	"errors"
	"net/http"
	"time"
)

// StatusError is an answer from a provider carried in an error chain. The
// provider clients' *Error types implement it, so that callers can classify
// any client's errors alike.
type StatusError interface {
	error
	// HTTPStatus is the status the provider answered with.
	HTTPStatus() int
	// RetryDelay is how long the provider asked the caller to wait; zero
	// when it did not say.
	RetryDelay() time.Duration
}

// StatusOf returns the HTTP status of the first StatusError in err's chain,
// or 0 when no answer was read (network error, timeout, refused call).
func StatusOf(err error) int {
	var se StatusError
	if errors.As(err, &se) {
		return se.HTTPStatus()
	}
	return 0
}

// Kind names why a provider call failed. Callers build error type names from
// it ("Knock" + "RateLimited"), which end up in workflow histories, dead
// letters and alerts, so the values never change; add new ones instead.
type Kind string

// The kinds of failure, from Classify and ClassifyStatus.
const (
	// KindNotFound: the thing the call acts on does not exist.
	KindNotFound Kind = "NotFound"
	// KindInvalid: the call is malformed, by the provider's answer (4xx) or
	// the client's own check.
	KindInvalid Kind = "InvalidRequest"
	// KindAuth: the credential is missing, wrong, revoked or lacks permission.
	KindAuth Kind = "AuthFailed"
	// KindConflict: the provider refuses for a reason a retry cannot fix,
	// such as an idempotency key reused with other parameters.
	KindConflict Kind = "Conflict"
	// KindRateLimited: 429; retry after the provider's delay.
	KindRateLimited Kind = "RateLimited"
	// KindUnavailable: no answer (network, timeout), 408 or 5xx; retry with
	// backoff.
	KindUnavailable Kind = "Unavailable"
	// KindCredentialMissing: the provider is configured but has no active
	// key to send (revoked, or never stored); nothing was sent. Only an
	// operator storing a key can fix it.
	KindCredentialMissing Kind = "CredentialMissing"
)

// Class is how a caller that retries should treat a failed call.
type Class struct {
	// Kind is the stable name of the failure.
	Kind Kind
	// Retryable is true when the same call may succeed later.
	Retryable bool
	// RetryAfter is the delay the provider asked for, when Retryable; zero
	// leaves the delay to the caller's retry policy.
	RetryAfter time.Duration
}

// ClassifyStatus classifies a provider's HTTP answer; status 0 means no
// answer at all (network error or timeout). Retryable matches Temporary,
// plus status 0.
func ClassifyStatus(status int, retryAfter time.Duration) Class {
	switch {
	case status == http.StatusTooManyRequests:
		return Class{Kind: KindRateLimited, Retryable: true, RetryAfter: retryAfter}
	case status == 0 || Temporary(status):
		return Class{Kind: KindUnavailable, Retryable: true, RetryAfter: retryAfter}
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return Class{Kind: KindAuth}
	case status == http.StatusNotFound:
		return Class{Kind: KindNotFound}
	case status == http.StatusConflict:
		return Class{Kind: KindConflict}
	default:
		return Class{Kind: KindInvalid}
	}
}

// Classify classifies an error returned by a provider client built on this
// package:
//   - ErrNotFound in the chain (a client's own "does not exist", such as
//     SimpleLogin's 400 for an unknown alias): NotFound, permanent;
//   - a StatusError: by its status, as ClassifyStatus, with its RetryDelay;
//   - ErrInvalidParams (refused before sending): InvalidRequest, permanent;
//   - ErrNoActiveKey (a key func found no active key): CredentialMissing,
//     permanent, so the step waits for an operator to store a key;
//   - ErrNoAPIKey (a client built without any key): AuthFailed, permanent,
//     so that an operator fixes the configuration rather than waiting for
//     retries;
//   - anything else means no answer was read (network, timeout, unreadable
//     body, key store down): Unavailable, retryable.
//
// A nil err gives the zero Class.
func Classify(err error) Class {
	var se StatusError
	switch {
	case err == nil:
		return Class{}
	case errors.Is(err, ErrNotFound):
		return Class{Kind: KindNotFound}
	case errors.As(err, &se):
		return ClassifyStatus(se.HTTPStatus(), se.RetryDelay())
	case errors.Is(err, ErrInvalidParams):
		return Class{Kind: KindInvalid}
	case errors.Is(err, ErrNoActiveKey):
		return Class{Kind: KindCredentialMissing}
	case errors.Is(err, ErrNoAPIKey):
		return Class{Kind: KindAuth}
	default:
		return Class{Kind: KindUnavailable, Retryable: true}
	}
}
