package providerhttp

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 8, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name  string
		value string
		want  time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "7", 7 * time.Second},
		{"seconds with spaces", " 7 ", 7 * time.Second},
		{"zero", "0", 0},
		{"negative", "-3", 0},
		{"junk", "soon", 0},
		{"fraction is not a Retry-After", "1.5", 0},
		{"seconds capped", "999999999999", MaxRetryAfter},
		{"seconds overflowing int64 are junk", "99999999999999999999", 0},
		{"HTTP date", now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"HTTP date in the past", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"HTTP date capped", now.Add(48 * time.Hour).Format(http.TimeFormat), MaxRetryAfter},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.value != "" {
				h.Set("Retry-After", tc.value)
			}
			if got := RetryAfter(h, now); got != tc.want {
				t.Errorf("RetryAfter(%q) = %s, want %s", tc.value, got, tc.want)
			}
		})
	}
}

func TestRetryAfterMs(t *testing.T) {
	cases := []struct {
		value string
		want  time.Duration
	}{
		{"", 0},
		{"1500", 1500 * time.Millisecond},
		{"0.5", 500 * time.Microsecond},
		{"0", 0},
		{"-1", 0},
		{"NaN", 0},
		{"+Inf", 0},
		{"junk", 0},
		{"1e30", MaxRetryAfter},
	}
	for _, tc := range cases {
		h := http.Header{}
		if tc.value != "" {
			h.Set("Retry-After-Ms", tc.value)
		}
		if got := RetryAfterMs(h); got != tc.want {
			t.Errorf("RetryAfterMs(%q) = %s, want %s", tc.value, got, tc.want)
		}
	}
}

func TestClientRetryAfterFollowsTheProvider(t *testing.T) {
	now := time.Now()
	both := header("Retry-After", "7", "Retry-After-Ms", "1500")
	cases := []struct {
		name     string
		provider Provider
		status   int
		h        http.Header
		want     time.Duration
	}{
		{"Retry-After-Ms wins when the provider sends it", Provider{RetryAfterMs: true}, 429, both, 1500 * time.Millisecond},
		{"Retry-After-Ms is ignored otherwise", Provider{}, 429, both, 7 * time.Second},
		{"an unreadable Retry-After-Ms falls back", Provider{RetryAfterMs: true}, 429, header("Retry-After", "7", "Retry-After-Ms", "x"), 7 * time.Second},
		{"a silent 429 gets the provider's backoff", Provider{RateLimitBackoff: 12 * time.Second}, 429, http.Header{}, 12 * time.Second},
		{"a silent 503 does not", Provider{RateLimitBackoff: 12 * time.Second}, 503, http.Header{}, 0},
		{"a 429 that says wins over the backoff", Provider{RateLimitBackoff: 12 * time.Second}, 429, header("Retry-After", "3"), 3 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Client{provider: tc.provider}
			if got := c.retryAfter(tc.status, tc.h, now); got != tc.want {
				t.Errorf("retryAfter = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestTemporary(t *testing.T) {
	for status, want := range map[int]bool{
		400: false, 401: false, 403: false, 404: false, 409: false, 422: false,
		408: true, 429: true, 500: true, 502: true, 503: true, 504: true,
	} {
		if got := Temporary(status); got != want {
			t.Errorf("Temporary(%d) = %t, want %t", status, got, want)
		}
	}
}

func TestScrub(t *testing.T) {
	got := Scrub("key sk_1 and sk_2, again sk_1", "sk_1", "", "sk_2")
	if want := "key [redacted] and [redacted], again [redacted]"; got != want {
		t.Errorf("Scrub = %q, want %q", got, want)
	}
	if got := Scrub("nothing to hide", ""); got != "nothing to hide" {
		t.Errorf("an empty secret must change nothing, got %q", got)
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"abcdef", 3, "abc…"},
		// "é" is two bytes: a cut inside it steps back to its start.
		{"aéb", 2, "a…"},
	}
	for _, tc := range cases {
		if got := Truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestErrorResponseMessage(t *testing.T) {
	cases := []struct {
		name    string
		body    string
		api     string
		fromAPI bool
		want    string
	}{
		{"the provider's message", `{"error":"Wrong api key"}`, "Wrong api key", true, "Wrong api key"},
		{"the body when it is not the provider's shape", "  <html>502</html>\n", "", false, "<html>502</html>"},
		{"the status text for an empty body", "", "", false, "Bad Gateway"},
		{"the status text for an empty message", `{"error":""}`, "", true, "Bad Gateway"},
		{"both keys redacted", "saw sk_sent and sk_static", "", false, "saw [redacted] and [redacted]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &ErrorResponse{StatusCode: http.StatusBadGateway, Body: []byte(tc.body), secrets: []string{"sk_sent", "sk_static"}}
			if got := r.Message(tc.api, tc.fromAPI); got != tc.want {
				t.Errorf("Message = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorResponseMessageRedactsAKeyTheCutWouldSplit(t *testing.T) {
	key := "sk_live_0123456789"
	body := strings.Repeat("x", MaxMessageLen-5) + key
	r := &ErrorResponse{StatusCode: http.StatusBadGateway, Body: []byte(body), secrets: []string{key}}
	got := r.Message("", false)
	if strings.Contains(got, key[:5]) {
		t.Errorf("the start of the key survived the cut: %q", got[len(got)-20:])
	}
	if len(got) > MaxMessageLen+len("…") {
		t.Errorf("message is %d bytes, want at most %d", len(got), MaxMessageLen+len("…"))
	}
}

func TestErrorText(t *testing.T) {
	cases := []struct {
		code, message, note string
		want                string
	}{
		{"", "", "", "acme: HTTP 502"},
		{"rate_limited", "slow down", "request r1", "acme: HTTP 502 rate_limited: slow down (request r1)"},
		{"", "Wrong api key", "retry after 3s", "acme: HTTP 502: Wrong api key (retry after 3s)"},
	}
	for _, tc := range cases {
		if got := ErrorText("acme", 502, tc.code, tc.message, tc.note); got != tc.want {
			t.Errorf("ErrorText = %q, want %q", got, tc.want)
		}
	}
}
