package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/resend/resend-go/v3"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// resendDefaultTimeout bounds one HTTP exchange when no HTTPClient is
// injected. It is shorter than any sensible activity StartToCloseTimeout, so
// an attempt has given up on its request before Temporal starts the next.
const resendDefaultTimeout = 30 * time.Second

// resendPageSize is the largest page GET /api-keys serves (limit 1..100).
const resendPageSize = 100

// resendMaxPages stops listing keys from looping forever on an API that keeps
// answering has_more; 100 pages of 100 is far beyond any real team.
const resendMaxPages = 100

// resendConn is an SDK client for one key and one activity call, with the
// transport that reads what the SDK drops from error responses.
type resendConn struct {
	sdk  *resend.Client
	seen *resendTransport
}

// client builds an SDK client that authenticates with key. The injected
// http.Client is copied, not changed, because others may share it.
func (a *ResendActivities) client(key string) *resendConn {
	base := a.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: resendDefaultTimeout}
	}
	next := base.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	tr := &resendTransport{next: next}
	hc := *base
	hc.Transport = tr

	sdk := resend.NewCustomClient(&hc, key)
	baseURL := a.BaseURL
	if baseURL == "" {
		baseURL = ResendDefaultBaseURL
	}
	// The SDK resolves relative paths ("api-keys") against BaseURL, which
	// drops the last path segment unless it ends in a slash.
	if u, err := url.Parse(strings.TrimSuffix(baseURL, "/") + "/"); err == nil {
		sdk.BaseURL = u
	}
	return &resendConn{sdk: sdk, seen: tr}
}

// call runs one SDK call and classifies its error with the status, error
// name and Retry-After of the response, if there was one.
func (c *resendConn) call(do func() error) error {
	c.seen.reset()
	err := do()
	if err == nil {
		return nil
	}
	resp := c.seen.last()
	if resp.status == 0 {
		// No answer read: network error, timeout, or a request the SDK
		// could not build.
		return transient(providerResend, ErrTypeUnavailable, scrubResend(err), 0)
	}
	return classifyResend(&resendError{Status: resp.status, Name: resp.name, Message: resp.message, retryAfter: resp.retryAfter, sdkErr: err})
}

// keysNamed lists every key and returns the ids of those called name.
func (c *resendConn) keysNamed(ctx context.Context, name string) ([]string, error) {
	var ids []string
	opts := &resend.ListOptions{Limit: new(resendPageSize)}
	for page := 0; page < resendMaxPages; page++ {
		var list resend.ListApiKeysResponse
		err := c.call(func() (err error) {
			list, err = c.sdk.ApiKeys.ListWithOptions(ctx, opts)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, k := range list.Data {
			if k.Name == name {
				ids = append(ids, k.Id)
			}
		}
		if !list.HasMore || len(list.Data) == 0 {
			return ids, nil
		}
		opts.After = new(list.Data[len(list.Data)-1].Id)
	}
	return nil, transient(providerResend, ErrTypeUnavailable,
		fmt.Errorf("list API keys: still has_more after %d pages", resendMaxPages), 0)
}

// deleteKey deletes key id; 404 means it is already gone, which is success.
func (c *resendConn) deleteKey(ctx context.Context, id string) error {
	err := c.call(func() error {
		_, err := c.sdk.ApiKeys.RemoveWithContext(ctx, url.PathEscape(id))
		return err
	})
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == ErrorType(providerResend, ErrTypeNotFound) {
		return nil
	}
	return err
}

// resendResponse is what the transport saw of the last response.
type resendResponse struct {
	status        int
	name, message string
	retryAfter    time.Duration
}

// resendTransport records the status, error name and Retry-After of each
// response. resend-go turns every error but 429 into errors.New(message),
// losing the status and the name ("restricted_api_key", "invalid_api_key")
// that classification and verification depend on, so they are read here on
// the way through; the body is put back for the SDK.
type resendTransport struct {
	next http.RoundTripper
	mu   sync.Mutex
	resp resendResponse
}

// RoundTrip sends req and records the response.
func (t *resendTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	seen := resendResponse{status: resp.StatusCode}
	if resp.StatusCode >= 400 {
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if rerr == nil {
			var e struct {
				Name    string `json:"name"`
				Message string `json:"message"`
			}
			if json.Unmarshal(body, &e) == nil {
				seen.name, seen.message = e.Name, e.Message
			}
		}
		seen.retryAfter = resendRetryAfter(resp.Header, time.Now())
	}
	t.mu.Lock()
	t.resp = seen
	t.mu.Unlock()
	return resp, nil
}

func (t *resendTransport) reset() {
	t.mu.Lock()
	t.resp = resendResponse{}
	t.mu.Unlock()
}

func (t *resendTransport) last() resendResponse {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.resp
}

// resendRetryAfter reads how long Resend asked to wait: retry-after in
// seconds (or, per HTTP, a date), else ratelimit-reset in seconds, either
// capped at providerhttp.MaxRetryAfter. Zero leaves the delay to the retry
// policy.
func resendRetryAfter(h http.Header, now time.Time) time.Duration {
	if d := providerhttp.RetryAfter(h, now); d > 0 {
		return d
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Ratelimit-Reset"))); err == nil && s > 0 {
		return time.Duration(min(s, int(providerhttp.MaxRetryAfter/time.Second))) * time.Second
	}
	return 0
}

// resendError is an error answer from Resend, as crmflow records it.
type resendError struct {
	// Status is the HTTP status.
	Status int
	// Name is Resend's error name, such as "invalid_api_key".
	Name string
	// Message is Resend's explanation.
	Message    string
	retryAfter time.Duration
	sdkErr     error
}

// Error names the status and Resend's error, without any key.
func (e *resendError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.Status)
	if e.Name != "" {
		msg += " " + e.Name
	}
	text := e.Message
	if text == "" && e.sdkErr != nil {
		text = e.sdkErr.Error()
	}
	if text != "" {
		msg += ": " + text
	}
	return resendKeyRE.ReplaceAllString(msg, "re_***")
}

// resendKeyRE matches Resend API keys, in case an error message quotes one:
// error text is stored in workflow histories.
var resendKeyRE = regexp.MustCompile(`\bre_[0-9A-Za-z_]+`)

// scrubResend copies err's text without any Resend key in it.
func scrubResend(err error) error {
	return errors.New(resendKeyRE.ReplaceAllString(err.Error(), "re_***"))
}

// classifyResend maps an error answer from Resend to a classified error:
//   - 429 rate_limit_exceeded: RateLimited, transient, with Resend's
//     retry-after as the next delay; 429 daily_quota_exceeded or
//     monthly_quota_exceeded: QuotaExceeded, permanent (waiting seconds does
//     not help).
//   - 409 concurrent_idempotent_requests: the first request is still
//     running; Unavailable, transient. Any other 409: Conflict, permanent.
//   - a 2xx whose body could not be read: Unavailable, transient.
//   - otherwise as for every provider (providerhttp.ClassifyStatus): 5xx
//     and 408 Unavailable (transient); 401/403 AuthFailed, 404 NotFound,
//     other 4xx InvalidRequest (permanent).
func classifyResend(e *resendError) error {
	switch {
	case e.Status == http.StatusTooManyRequests && (e.Name == "daily_quota_exceeded" || e.Name == "monthly_quota_exceeded"):
		return permanent(providerResend, ErrTypeQuotaExceeded, e)
	case e.Status == http.StatusConflict && e.Name == "concurrent_idempotent_requests":
		return transient(providerResend, ErrTypeUnavailable, e, e.retryAfter)
	case e.Status < 400:
		return transient(providerResend, ErrTypeUnavailable, e, 0)
	default:
		return classified(providerResend, providerhttp.ClassifyStatus(e.Status, e.retryAfter), e)
	}
}
