package api

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/internal/callstats"
)

// TestConsoleCookiesAreSecureOverTLS: over TLS, or when configured for a
// TLS-terminating proxy, the console's cookies are Secure; always HttpOnly
// and SameSite=Strict.
func TestConsoleCookiesAreSecureOverTLS(t *testing.T) {
	plain := httptest.NewRequest(http.MethodGet, "http://crmflow.test/console/", nil)
	overTLS := httptest.NewRequest(http.MethodGet, "https://crmflow.test/console/", nil)
	overTLS.TLS = &tls.ConnectionState{}
	for _, tc := range []struct {
		name   string
		c      *console
		r      *http.Request
		secure bool
	}{
		{"plain HTTP", &console{}, plain, false},
		{"TLS", &console{}, overTLS, true},
		{"behind a TLS proxy", &console{deps: ConsoleDeps{SecureCookies: true}}, plain, true},
	} {
		ck := tc.c.cookie(tc.r, consoleSessionCookie, "v", consolePath, time.Hour)
		assert.Equal(t, tc.secure, ck.Secure, tc.name)
		assert.True(t, ck.HttpOnly, tc.name)
		assert.Equal(t, http.SameSiteStrictMode, ck.SameSite, tc.name)
		assert.Equal(t, 3600, ck.MaxAge, tc.name)
	}
	assert.Equal(t, -1, (&console{}).cookie(plain, consoleSessionCookie, "", consolePath, -1).MaxAge, "deleting")
}

// TestSameOriginRefusesCrossSiteRequests covers every header combination.
func TestSameOriginRefusesCrossSiteRequests(t *testing.T) {
	for _, tc := range []struct {
		site, origin string
		ok           bool
	}{
		{"", "", true}, // not a browser: the CSRF token decides
		{"same-origin", "", true},
		{"none", "", true},
		{"same-origin", "http://crmflow.test", true},
		{"", "http://crmflow.test", true},
		{"cross-site", "", false},
		{"same-site", "", false},
		{"", "https://evil.example", false},
		{"same-origin", "https://evil.example", false},
		{"", "null", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://crmflow.test/console/login", nil)
		if tc.site != "" {
			r.Header.Set("Sec-Fetch-Site", tc.site)
		}
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		assert.Equal(t, tc.ok, sameOrigin(r), "Sec-Fetch-Site %q, Origin %q", tc.site, tc.origin)
	}
}

// TestSparklineDrawsRequestsAndErrors: one bar per busy hour, scaled to
// the busiest, with the failed share in red; the title is escaped.
func TestSparklineDrawsRequestsAndErrors(t *testing.T) {
	var slots [callstats.Slots]callstats.Slot
	slots[0] = callstats.Slot{Requests: 10}
	slots[23] = callstats.Slot{Requests: 5, Errors: 5}
	svg := string(sparkline(`<Knock & "co">`, slots))
	assert.True(t, strings.HasPrefix(svg, `<svg class="spark"`))
	assert.Equal(t, 2, strings.Count(svg, `class="req"`), "two busy hours")
	assert.Equal(t, 1, strings.Count(svg, `class="err"`), "one hour with failures")
	assert.Contains(t, svg, `<rect class="req" x="0" y="0" width="4" height="24"`, "the busiest hour is full height")
	assert.Contains(t, svg, `<rect class="err" x="115" y="12" width="4" height="12"`, "all of a half-height hour failed")
	assert.Contains(t, svg, "15 requests, 5 failed")
	assert.NotContains(t, svg, "<Knock")
	assert.Contains(t, svg, "&lt;Knock &amp; &#34;co&#34;&gt;")

	empty := string(sparkline("idle", [callstats.Slots]callstats.Slot{}))
	assert.NotContains(t, empty, "<rect", "no calls, no bars")
}

func TestAgeReadsLikePeopleSayIt(t *testing.T) {
	assert.Equal(t, "40s", age(40*time.Second))
	assert.Equal(t, "12m", age(12*time.Minute))
	assert.Equal(t, "5h 12m", age(5*time.Hour+12*time.Minute))
	assert.Equal(t, "3d 4h", age(76*time.Hour))
}
