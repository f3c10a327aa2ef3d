package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/resend/resend-go/v3"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
)

// providerResend names Resend in error types: "ResendAuthFailed".
const providerResend = "Resend"

// ErrTypeQuotaExceeded: Resend's daily or monthly quota is used up (a 429
// that waiting seconds does not cure), so it is permanent, unlike
// RateLimited. It is declared here rather than with the others because only
// Resend reports it so far.
const ErrTypeQuotaExceeded = "QuotaExceeded"

// The credential the Resend activities authenticate with, as the credential
// store names it; the same names as the config keys that seed the store
// (resend.api_key).
const (
	// ResendCredentialProvider is the store's provider name for Resend.
	ResendCredentialProvider = "resend"
	// ResendCredentialName is the store's name for Resend's API key.
	ResendCredentialName = "api_key"
)

// ResendKeyNamePrefix starts the name of every Resend API key crmflow
// creates. CreateAPIKey deletes existing keys that carry the name it is asked
// to create, so it refuses names without this prefix: a key a person made in
// the Resend dashboard can never be deleted by a rotation.
const ResendKeyNamePrefix = "crmflow-"

// Permissions of a Resend API key, for CreateAPIKeyInput.Permission.
const (
	// ResendFullAccess can create, read, update and delete every resource,
	// API keys included: the active key must have it, or the next rotation
	// cannot create its successor.
	ResendFullAccess = "full_access"
	// ResendSendingAccess can only send email.
	ResendSendingAccess = "sending_access"
)

// ResendDefaultBaseURL is Resend's API, used when ResendActivities.BaseURL is
// empty. Setting it here, rather than leaving the SDK's default, keeps the
// SDK's RESEND_BASE_URL environment variable from silently redirecting calls.
const ResendDefaultBaseURL = "https://api.resend.com"

// resendDefaultTimeout bounds one HTTP exchange when no HTTPClient is
// injected. It is shorter than any sensible activity StartToCloseTimeout, so
// an attempt has given up on its request before Temporal starts the next.
const resendDefaultTimeout = 30 * time.Second

// resendPageSize is the largest page GET /api-keys serves (limit 1..100).
const resendPageSize = 100

// resendMaxPages stops listing keys from looping forever on an API that keeps
// answering has_more; 100 pages of 100 is far beyond any real team.
const resendMaxPages = 100

// KeySource hands out the credential currently active for a provider. The
// credential store implements it; activities call it on every attempt, so a
// rotated key is used as soon as it is active, without a restart.
type KeySource interface {
	// ActiveKey returns the active credential name of provider (such as
	// ResendCredentialProvider, ResendCredentialName). An empty key and a nil
	// error mean none is configured, which puts the caller in console mode.
	ActiveKey(ctx context.Context, provider, name string) (string, error)
}

// ResendToken is a Resend API key's secret token. Every formatting path (fmt
// with any verb, slog) shows "[redacted]"; JSON keeps the value, because the
// token must reach the credential-store activity through the workflow's
// payloads, which crmflow's payload codec encrypts.
type ResendToken string

// resendRedacted is what any printed token looks like.
const resendRedacted = "[redacted]"

// Reveal returns the token itself, for the one place that must use it.
func (t ResendToken) Reveal() string { return string(t) }

// String shows whether the token is set, never its value.
func (t ResendToken) String() string {
	if t == "" {
		return ""
	}
	return resendRedacted
}

// GoString keeps %#v from printing the value.
func (t ResendToken) GoString() string { return `activities.ResendToken("` + t.String() + `")` }

// Format keeps every fmt verb, %d and %x included, from printing the value;
// String alone covers only %v, %s and %q.
func (t ResendToken) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, t.GoString())
		return
	}
	_, _ = io.WriteString(f, t.String())
}

// LogValue keeps slog from printing the value.
func (t ResendToken) LogValue() slog.Value { return slog.StringValue(t.String()) }

// ResendCall is a request console mode would have sent to Resend. It carries
// no credential.
type ResendCall struct {
	// Method is the HTTP method, such as POST.
	Method string
	// Path is the request path with its query, such as /domains?limit=1.
	Path string
	// Body is the JSON body that would have been sent, nil for none.
	Body json.RawMessage
}

// ResendRecorder receives console mode's calls. An error from Record fails
// the activity, so a recorder that stores calls can make it retry.
type ResendRecorder interface {
	Record(ctx context.Context, call ResendCall) error
}

// ResendActivities create, verify and delete Resend API keys: the Resend part
// of the KeyRotation workflow, built on Resend's Go SDK (resend-go).
//
// Keys rotate, so no SDK client is kept: each call asks Keys for the active
// key and builds a client for it. With no KeySource, or none holding a Resend
// key, the activities run in console mode: nothing is sent, each call goes to
// Recorder (or the activity log) and labelled fake values come back, so the
// rotation workflow runs the same way without a Resend account.
type ResendActivities struct {
	// Keys hands out the key the activities authenticate with; nil is
	// console mode.
	Keys KeySource
	// BaseURL is Resend's API; empty means ResendDefaultBaseURL. Tests point
	// it at a fake.
	BaseURL string
	// HTTPClient sends the requests; nil means a client with a 30 s timeout.
	// Its timeout should stay below the activities' StartToCloseTimeout.
	HTTPClient *http.Client
	// Recorder receives console mode's calls; nil logs them at info level.
	Recorder ResendRecorder
}

// CreateAPIKeyInput is the Resend API key to create.
type CreateAPIKeyInput struct {
	// Name must be unique to the rotation attempt and start with
	// ResendKeyNamePrefix: ResendKeyName(rotation id) gives one. An existing
	// key of that name is taken for a leftover of this attempt and deleted.
	Name string
	// Permission is ResendFullAccess or ResendSendingAccess.
	Permission string
}

// CreateAPIKeyOutput is the key Resend created.
type CreateAPIKeyOutput struct {
	// KeyID is Resend's id of the key, the handle for deleting it later, or
	// "console:" plus the name in console mode.
	KeyID string
	// Token is the key itself. Resend shows it only in this answer, so the
	// workflow must hand it straight to the credential store; it never
	// prints (see ResendToken).
	Token ResendToken
	// Console is true when nothing was sent to Resend.
	Console bool
}

// LogValue leaves the token out when slog logs the whole output; slog would
// otherwise render the struct as JSON, which carries the token's value.
func (o CreateAPIKeyOutput) LogValue() slog.Value {
	return slog.GroupValue(slog.String("KeyID", o.KeyID), slog.Any("Token", o.Token), slog.Bool("Console", o.Console))
}

// VerifyAPIKeyInput is the key to check.
type VerifyAPIKeyInput struct {
	// Token is the key to check; it authenticates the check itself.
	Token ResendToken
}

// LogValue leaves the token out when slog logs the whole input.
func (in VerifyAPIKeyInput) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("Token", in.Token))
}

// VerifyAPIKeyOutput says whether Resend accepts a key.
type VerifyAPIKeyOutput struct {
	// Valid is true when Resend authenticated the key.
	Valid bool
	// Restricted is true for a valid key limited to sending email: it cannot
	// create or delete keys, so it cannot serve as the rotating key.
	Restricted bool
	// Reason is Resend's error name when Valid is false, such as
	// "invalid_api_key", for the audit trail.
	Reason string
	// Console is true when nothing was sent to Resend.
	Console bool
}

// DeleteAPIKeyInput names the Resend API key to delete.
type DeleteAPIKeyInput struct {
	// KeyID is Resend's id of the key.
	KeyID string
}

// ResendKeyName is the name of the key a rotation creates: unique per
// rotation, so a retried creation recognises the key an earlier attempt of
// the same rotation left behind.
func ResendKeyName(rotationID string) string { return ResendKeyNamePrefix + rotationID }

// CreateAPIKey creates a Resend API key named in.Name.
//
// Resend has no idempotency key for POST /api-keys, and the token is shown
// only in the answer to the creation, so a retry after a lost answer cannot
// recover it: it lists the keys first, deletes any key already called in.Name
// (the invisible leftover of an earlier attempt, whose token nobody holds),
// and then creates the key. A retry therefore never leaves a usable key
// behind that crmflow cannot see, at the cost of one list call per attempt.
func (a *ResendActivities) CreateAPIKey(ctx context.Context, in CreateAPIKeyInput) (*CreateAPIKeyOutput, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	logger := log.With(activity.GetLogger(ctx), "resendKeyName", in.Name, "permission", in.Permission)
	key, err := a.activeKey(ctx)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(resend.CreateApiKeyRequest{Name: in.Name, Permission: in.Permission})
	if key == "" {
		if err := a.record(ctx, http.MethodPost, "/api-keys", body); err != nil {
			return nil, err
		}
		return &CreateAPIKeyOutput{KeyID: "console:" + in.Name, Token: ResendToken("console:" + in.Name + ":token"), Console: true}, nil
	}

	c := a.client(key)
	stale, err := c.keysNamed(ctx, in.Name)
	if err != nil {
		return nil, err
	}
	for _, id := range stale {
		logger.Warn("resend: deleting the key an earlier attempt created; its token was lost", "resendKeyID", id)
		if err := c.deleteKey(ctx, id); err != nil {
			return nil, err
		}
	}

	var created resend.CreateApiKeyResponse
	err = c.call(func() (err error) {
		created, err = c.sdk.ApiKeys.CreateWithContext(ctx, &resend.CreateApiKeyRequest{Name: in.Name, Permission: in.Permission})
		return err
	})
	if err != nil {
		return nil, err
	}
	if created.Id == "" || created.Token == "" {
		// The key may exist; the next attempt finds it by name and deletes it.
		return nil, transient(providerResend, ErrTypeUnavailable, errors.New("create API key: the answer lacks the id or the token"), 0)
	}
	logger.Info("resend: API key created", "resendKeyID", created.Id, "replacedLeftovers", len(stale))
	return &CreateAPIKeyOutput{KeyID: created.Id, Token: ResendToken(created.Token)}, nil
}

// VerifyAPIKey checks in.Token with the cheapest authenticated read Resend
// has, GET /domains?limit=1 (there is no whoami). A 200 means valid; 401
// restricted_api_key means valid but limited to sending, which still proves
// the key exists. 403 invalid_api_key and 401 missing_api_key mean Resend
// does not know the key: that is an answer (Valid false), not an error, so
// the workflow can keep the old key and report.
func (a *ResendActivities) VerifyAPIKey(ctx context.Context, in VerifyAPIKeyInput) (*VerifyAPIKeyOutput, error) {
	if !validResendToken(in.Token.Reveal()) {
		// A token with spaces or control characters cannot be a Resend key,
		// and net/http would refuse to send it in a header anyway.
		return &VerifyAPIKeyOutput{Reason: "malformed_token"}, nil
	}
	// The active key is not used, but decides console mode the same way as
	// for the other activities, so a console rotation verifies its fake key.
	active, err := a.activeKey(ctx)
	if err != nil {
		return nil, err
	}
	if active == "" {
		if err := a.record(ctx, http.MethodGet, "/domains?limit=1", nil); err != nil {
			return nil, err
		}
		return &VerifyAPIKeyOutput{Valid: true, Console: true}, nil
	}

	c := a.client(in.Token.Reveal())
	limit := 1
	err = c.call(func() error {
		_, err := c.sdk.Domains.ListWithOptions(ctx, &resend.ListOptions{Limit: &limit})
		return err
	})
	if err == nil {
		return &VerifyAPIKeyOutput{Valid: true}, nil
	}
	// call has classified err already; the answers that settle the question
	// are picked out of it, and every other error (429, 5xx, another 401 or
	// 403) stays an error.
	var rerr *resendError
	if errors.As(err, &rerr) {
		switch {
		case rerr.Status == http.StatusUnauthorized && rerr.Name == "restricted_api_key":
			return &VerifyAPIKeyOutput{Valid: true, Restricted: true}, nil
		case rerr.Status == http.StatusForbidden && rerr.Name == "invalid_api_key",
			rerr.Status == http.StatusUnauthorized && rerr.Name == "missing_api_key":
			activity.GetLogger(ctx).Warn("resend: key not accepted", "reason", rerr.Name)
			return &VerifyAPIKeyOutput{Reason: rerr.Name}, nil
		}
	}
	return nil, err
}

// DeleteAPIKey deletes the Resend API key in.KeyID. A key that is already
// gone (404) counts as deleted, so a retry after a lost answer succeeds.
func (a *ResendActivities) DeleteAPIKey(ctx context.Context, in DeleteAPIKeyInput) error {
	if strings.TrimSpace(in.KeyID) == "" {
		return invalidResendInput("key id is empty")
	}
	key, err := a.activeKey(ctx)
	if err != nil {
		return err
	}
	if key == "" {
		return a.record(ctx, http.MethodDelete, "/api-keys/"+url.PathEscape(in.KeyID), nil)
	}
	if err := a.client(key).deleteKey(ctx, in.KeyID); err != nil {
		return err
	}
	activity.GetLogger(ctx).Info("resend: API key deleted", "resendKeyID", in.KeyID)
	return nil
}

// validate refuses keys Resend would refuse and names that could match a key
// crmflow did not create.
func (in CreateAPIKeyInput) validate() error {
	switch {
	case !strings.HasPrefix(in.Name, ResendKeyNamePrefix) || strings.TrimSpace(in.Name[len(ResendKeyNamePrefix):]) == "":
		return invalidResendInput(fmt.Sprintf("key name %q must be %q followed by the rotation id", in.Name, ResendKeyNamePrefix))
	case in.Permission != ResendFullAccess && in.Permission != ResendSendingAccess:
		return invalidResendInput(fmt.Sprintf("permission %q is neither %q nor %q", in.Permission, ResendFullAccess, ResendSendingAccess))
	}
	return nil
}

// invalidResendInput is a permanent ResendInvalidRequest for a bad input.
func invalidResendInput(msg string) error {
	return permanent(providerResend, ErrTypeInvalid, errors.New(msg))
}

// validResendToken reports whether s could be sent as a bearer token: not
// empty, printable ASCII, no spaces.
func validResendToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// activeKey returns the key to authenticate with, or "" for console mode.
// An error the KeySource already classified passes through; any other is the
// store being unreachable, which a retry may cure.
func (a *ResendActivities) activeKey(ctx context.Context) (string, error) {
	if a.Keys == nil {
		return "", nil
	}
	key, err := a.Keys.ActiveKey(ctx, ResendCredentialProvider, ResendCredentialName)
	if err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			return "", err
		}
		return "", transient(providerStore, ErrTypeUnavailable, fmt.Errorf("read the active Resend key: %w", err), 0)
	}
	if key != "" && !validResendToken(key) {
		return "", permanent(providerResend, ErrTypeAuth, errors.New("the active Resend key is malformed (spaces or control characters)"))
	}
	return key, nil
}

// record hands a console-mode call to the recorder, or logs it.
func (a *ResendActivities) record(ctx context.Context, method, path string, body json.RawMessage) error {
	call := ResendCall{Method: method, Path: path, Body: body}
	if a.Recorder == nil {
		activity.GetLogger(ctx).Info("CONSOLE MODE resend: would send", "method", method, "path", path, "body", string(body))
		return nil
	}
	if err := a.Recorder.Record(ctx, call); err != nil {
		return transient(providerResend, ErrTypeUnavailable, fmt.Errorf("console recorder: %w", err), 0)
	}
	return nil
}

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
// seconds (or, per HTTP, a date), else ratelimit-reset in seconds. Zero
// leaves the delay to the retry policy.
func resendRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s > 0 {
			return time.Duration(s) * time.Second
		}
		if at, err := http.ParseTime(v); err == nil && at.After(now) {
			return at.Sub(now)
		}
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h.Get("Ratelimit-Reset"))); err == nil && s > 0 {
		return time.Duration(s) * time.Second
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
//   - otherwise as for every provider (classifyHTTP): 5xx and 408
//     Unavailable (transient); 401/403 AuthFailed, 404 NotFound, other 4xx
//     InvalidRequest (permanent).
func classifyResend(e *resendError) error {
	switch {
	case e.Status == http.StatusTooManyRequests && (e.Name == "daily_quota_exceeded" || e.Name == "monthly_quota_exceeded"):
		return permanent(providerResend, ErrTypeQuotaExceeded, e)
	case e.Status == http.StatusConflict && e.Name == "concurrent_idempotent_requests":
		return transient(providerResend, ErrTypeUnavailable, e, e.retryAfter)
	case e.Status < 400:
		return transient(providerResend, ErrTypeUnavailable, e, 0)
	default:
		return classifyHTTP(providerResend, e.Status, e, e.retryAfter)
	}
}
