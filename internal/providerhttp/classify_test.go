package providerhttp

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// statusErr is a provider's error as the clients build them.
type statusErr struct {
	status int
	delay  time.Duration
}

func (e *statusErr) Error() string             { return fmt.Sprintf("HTTP %d", e.status) }
func (e *statusErr) HTTPStatus() int           { return e.status }
func (e *statusErr) RetryDelay() time.Duration { return e.delay }

func TestClassifyStatus(t *testing.T) {
	const wait = 7 * time.Second
	cases := []struct {
		status int
		want   Class
	}{
		{429, Class{Kind: KindRateLimited, Retryable: true, RetryAfter: wait}},
		{0, Class{Kind: KindUnavailable, Retryable: true, RetryAfter: wait}},
		{408, Class{Kind: KindUnavailable, Retryable: true, RetryAfter: wait}},
		{500, Class{Kind: KindUnavailable, Retryable: true, RetryAfter: wait}},
		{503, Class{Kind: KindUnavailable, Retryable: true, RetryAfter: wait}},
		{401, Class{Kind: KindAuth}},
		{403, Class{Kind: KindAuth}},
		{404, Class{Kind: KindNotFound}},
		{409, Class{Kind: KindConflict}},
		{400, Class{Kind: KindInvalid}},
		{412, Class{Kind: KindInvalid}},
		{422, Class{Kind: KindInvalid}},
	}
	for _, tc := range cases {
		if got := ClassifyStatus(tc.status, wait); got != tc.want {
			t.Errorf("ClassifyStatus(%d) = %+v, want %+v", tc.status, got, tc.want)
		}
		if tc.status != 0 && tc.want.Retryable != Temporary(tc.status) {
			t.Errorf("status %d: Retryable %t disagrees with Temporary", tc.status, tc.want.Retryable)
		}
	}
}

func TestClassify(t *testing.T) {
	// A provider package's sentinels, as knock and simplelogin declare them.
	errNoKey := fmt.Errorf("acme: %w", ErrNoAPIKey)
	errInvalid := fmt.Errorf("acme: %w", ErrInvalidParams)
	errMissing := fmt.Errorf("acme: thing %w", ErrNotFound)

	cases := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, Class{}},
		{"429 with its delay", fmt.Errorf("trigger: %w", &statusErr{429, 3 * time.Second}), Class{Kind: KindRateLimited, Retryable: true, RetryAfter: 3 * time.Second}},
		{"502", fmt.Errorf("trigger: %w", &statusErr{502, 0}), Class{Kind: KindUnavailable, Retryable: true}},
		{"401", &statusErr{401, 0}, Class{Kind: KindAuth}},
		{"409", &statusErr{409, 0}, Class{Kind: KindConflict}},
		{"422", &statusErr{422, 0}, Class{Kind: KindInvalid}},
		// SimpleLogin answers 400 for an unknown alias; the client says so.
		{"not found wins over the status", fmt.Errorf("get: %w: %w", errMissing, &statusErr{400, 0}), Class{Kind: KindNotFound}},
		{"refused before sending", fmt.Errorf("trigger: %w: empty key", errInvalid), Class{Kind: KindInvalid}},
		{"no API key", fmt.Errorf("trigger: %w", errNoKey), Class{Kind: KindAuth}},
		{"no active key", fmt.Errorf("trigger: %w (%w)", errNoKey, ErrNoActiveKey), Class{Kind: KindCredentialMissing}},
		{"network", fmt.Errorf("send request: %w", errors.New("connection refused")), Class{Kind: KindUnavailable, Retryable: true}},
		{"deadline", fmt.Errorf("send request: %w", context.DeadlineExceeded), Class{Kind: KindUnavailable, Retryable: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.err); got != tc.want {
				t.Errorf("Classify(%v) = %+v, want %+v", tc.err, got, tc.want)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	if got := StatusOf(fmt.Errorf("delete: %w", &statusErr{403, 0})); got != 403 {
		t.Errorf("StatusOf = %d, want 403", got)
	}
	if got := StatusOf(errors.New("connection reset")); got != 0 {
		t.Errorf("StatusOf without an answer = %d, want 0", got)
	}
}
