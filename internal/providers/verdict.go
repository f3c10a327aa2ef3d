package providers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Verdict is a provider's answer about a key.
type Verdict struct {
	// Valid is true when the provider accepted the key.
	Valid bool
	// Limited is true for a valid key that cannot do everything crmflow
	// asks of it (a Resend sending-only key, a Stripe restricted key
	// without balance access).
	Limited bool
	// Code is the answer's HTTP status code; 0 when nothing was answered.
	// It is set with an error too, so a caller can tell a provider that is
	// down (0, 429, 5xx) from one that answers strangely.
	Code int
	// Status is Code as a status line, e.g. "401 Unauthorized".
	Status string
	// Reason is the provider's word for a refusal (an error code or
	// message), or what a limited key cannot do. It never quotes the key.
	Reason string
}

// Down reports whether a check failed because the provider is down or
// throttling (no answer, 429, 5xx), rather than answering at all.
func (v Verdict) Down() bool {
	return v.Code == 0 || v.Code == http.StatusTooManyRequests || v.Code >= 500
}

// verdict is a Verdict for an answer of code.
func verdict(valid bool, code int, reason string) Verdict {
	return Verdict{Valid: valid, Code: code, Status: statusLine(code), Reason: reason}
}

// get makes one authenticated GET and returns the status and the start of
// the body.
func get(ctx context.Context, hc *http.Client, url, header, value string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set(header, value)
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, body, nil
}

func statusLine(code int) string {
	return strings.TrimSpace(fmt.Sprintf("%d %s", code, http.StatusText(code)))
}

// scrub removes secret from s.
func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}
