package activities

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// TestResendRetryAfter: Retry-After (seconds or an HTTP date) wins, else
// Ratelimit-Reset in seconds; either is capped, so a huge value cannot
// overflow into a negative delay.
func TestResendRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	huge := "9999999999999" // seconds: overflows a time.Duration uncapped
	tests := []struct {
		name                       string
		retryAfter, ratelimitReset string
		want                       time.Duration
	}{
		{"neither", "", "", 0},
		{"retry-after seconds", "7", "2", 7 * time.Second},
		{"retry-after date", now.Add(90 * time.Second).Format(http.TimeFormat), "", 90 * time.Second},
		{"retry-after date in the past", now.Add(-time.Minute).Format(http.TimeFormat), "2", 2 * time.Second},
		{"retry-after zero", "0", "3", 3 * time.Second},
		{"retry-after unreadable", "soon", "", 0},
		{"ratelimit-reset only", "", "2", 2 * time.Second},
		{"ratelimit-reset not positive", "", "0", 0},
		{"huge retry-after", huge, "", providerhttp.MaxRetryAfter},
		{"huge ratelimit-reset", "", huge, providerhttp.MaxRetryAfter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.retryAfter != "" {
				h.Set("Retry-After", tc.retryAfter)
			}
			if tc.ratelimitReset != "" {
				h.Set("Ratelimit-Reset", tc.ratelimitReset)
			}
			assert.Equal(t, tc.want, resendRetryAfter(h, now))
		})
	}
}
