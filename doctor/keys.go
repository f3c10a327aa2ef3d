package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/stripe/stripe-go/v76"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/simplelogin"
)

// KnockProbeUser is the Knock user the key check reads. It need not exist:
// Knock answers 404 for an unknown user only after the key authenticated.
const KnockProbeUser = "crmflow-key-check"

// KeyVerdict is a provider's answer about a key.
type KeyVerdict struct {
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

// Probe names the cheapest authenticated call CheckKey makes for provider,
// e.g. "GET /v1/balance"; empty for a provider it cannot check.
func Probe(provider string) string {
	switch provider {
	case "stripe":
		return "GET /v1/balance"
	case "knock":
		return "GET /v1/users/" + KnockProbeUser
	case "simplelogin":
		return "GET /api/user_info"
	case "resend":
		return "GET /api-keys"
	}
	return ""
}

// CheckKey makes provider's cheapest authenticated call with secret against
// the API URL in cfg and reads the answer as a verdict: Stripe GET
// /v1/balance, Knock GET /v1/users/<probe user>, SimpleLogin GET
// /api/user_info, Resend GET /api-keys. An error means there is no verdict
// (network failure, timeout, 429, 5xx, an answer that is not the
// provider's); neither it nor the verdict ever quotes the key. Key rotation
// checks a candidate key with it, and crmflow doctor the active one.
func CheckKey(ctx context.Context, hc *http.Client, cfg *config.Config, provider, secret string) (KeyVerdict, error) {
	if hc == nil {
		hc = &http.Client{Timeout: defaultTimeout}
	}
	var (
		v   KeyVerdict
		err error
	)
	switch provider {
	case "stripe":
		v, err = checkStripeKey(ctx, hc, cfg.Stripe.APIURL, secret)
	case "knock":
		v, err = checkKnockKey(ctx, hc, cfg.Knock.APIURL, secret)
	case "simplelogin":
		v, err = checkSimpleLoginKey(ctx, hc, cfg.SimpleLogin.APIURL, secret)
	case "resend":
		v, err = checkResendKey(ctx, hc, cfg.Resend.APIURL, secret)
	default:
		return KeyVerdict{}, fmt.Errorf("no key check for provider %q", provider)
	}
	// Belt and braces: whatever a provider or a proxy echoed, the key does
	// not leave this function.
	v.Reason = scrub(v.Reason, secret)
	if err != nil {
		return v, errors.New(scrub(fmt.Sprintf("%s %s: %v", provider, Probe(provider), err), secret))
	}
	return v, nil
}

func checkStripeKey(ctx context.Context, hc *http.Client, apiURL, secret string) (KeyVerdict, error) {
	// stripe-go reports an answer that is not Stripe's JSON (a proxy's 503
	// page) without its status: the transport notes it.
	var answered int
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	observed := *hc
	observed.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		if resp != nil {
			answered = resp.StatusCode
		}
		return resp, err
	})
	sc := activities.NewStripeClientWithHTTPClient(secret, apiURL, &observed)
	params := &stripe.BalanceParams{}
	params.Context = ctx
	_, err := sc.Balance.Get(params)
	var se *stripe.Error
	switch {
	case err == nil:
		return KeyVerdict{Valid: true, Code: http.StatusOK, Status: statusLine(http.StatusOK)}, nil
	case !errors.As(err, &se) && answered != 0:
		return KeyVerdict{Code: answered, Status: statusLine(answered)}, fmt.Errorf("answered %s", statusLine(answered))
	case !errors.As(err, &se):
		return KeyVerdict{}, err
	case se.HTTPStatusCode == http.StatusUnauthorized:
		// Stripe's message may quote part of the key: only its type is kept.
		reason := string(se.Code)
		if reason == "" {
			reason = string(se.Type)
		}
		return KeyVerdict{Code: se.HTTPStatusCode, Status: statusLine(se.HTTPStatusCode), Reason: reason}, nil
	case se.HTTPStatusCode == http.StatusForbidden:
		// A restricted key (rk_…) authenticated but may not read the
		// balance; crmflow needs PaymentIntents and customer balance
		// transactions, which it may still have.
		return KeyVerdict{Valid: true, Limited: true, Code: se.HTTPStatusCode, Status: statusLine(se.HTTPStatusCode),
			Reason: "a restricted key without balance access; crmflow needs PaymentIntents read and Customers write"}, nil
	default:
		return KeyVerdict{Code: se.HTTPStatusCode, Status: statusLine(se.HTTPStatusCode)}, fmt.Errorf("answered %s (%s %s)", statusLine(se.HTTPStatusCode), se.Type, se.Code)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// knockError is Knock's error body; a path its router does not know answers
// {"errors":{"detail":"404 Not Found"}} instead.
type knockError struct {
	Code   string          `json:"code"`
	Errors json.RawMessage `json:"errors"`
}

func checkKnockKey(ctx context.Context, hc *http.Client, apiURL, secret string) (KeyVerdict, error) {
	code, body, err := get(ctx, hc, strings.TrimRight(apiURL, "/")+"/v1/users/"+KnockProbeUser, "Authorization", "Bearer "+secret)
	if err != nil {
		return KeyVerdict{}, err
	}
	var ke knockError
	_ = json.Unmarshal(body, &ke) // a body of another shape leaves both fields empty
	switch {
	case code == http.StatusOK:
		return KeyVerdict{Valid: true, Code: code, Status: statusLine(code)}, nil
	case code == http.StatusNotFound && ke.Errors != nil:
		return KeyVerdict{Code: code, Status: statusLine(code)}, errors.New("the path is unknown to Knock's router: knock.api_url must be Knock's API origin (https://api.knock.app, without /v1)")
	case code == http.StatusNotFound:
		// The probe user does not exist, which Knock says only to a key it
		// accepted.
		return KeyVerdict{Valid: true, Code: code, Status: statusLine(code)}, nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return KeyVerdict{Code: code, Status: statusLine(code), Reason: ke.Code}, nil
	default:
		return KeyVerdict{Code: code, Status: statusLine(code)}, fmt.Errorf("answered %s", statusLine(code))
	}
}

func checkSimpleLoginKey(ctx context.Context, hc *http.Client, apiURL, secret string) (KeyVerdict, error) {
	sl := simplelogin.NewClient(simplelogin.WithAPIKey(secret), simplelogin.WithBaseURL(apiURL), simplelogin.WithHTTPClient(hc))
	_, err := sl.UserInfo(ctx)
	var se *simplelogin.Error
	switch {
	case err == nil:
		return KeyVerdict{Valid: true, Code: http.StatusOK, Status: statusLine(http.StatusOK)}, nil
	case !errors.As(err, &se):
		return KeyVerdict{}, err
	case se.StatusCode == http.StatusUnauthorized || se.StatusCode == http.StatusForbidden:
		// SimpleLogin's messages ("Wrong api key", "Disabled account") are
		// meant to be shown as they are.
		return KeyVerdict{Code: se.StatusCode, Status: statusLine(se.StatusCode), Reason: se.Message}, nil
	default:
		return KeyVerdict{Code: se.StatusCode, Status: statusLine(se.StatusCode)}, fmt.Errorf("answered %s", statusLine(se.StatusCode))
	}
}

// resendError is Resend's error body.
type resendError struct {
	Name string `json:"name"`
}

func checkResendKey(ctx context.Context, hc *http.Client, apiURL, secret string) (KeyVerdict, error) {
	code, body, err := get(ctx, hc, strings.TrimRight(apiURL, "/")+"/api-keys?limit=1", "Authorization", "Bearer "+secret)
	if err != nil {
		return KeyVerdict{}, err
	}
	var re resendError
	_ = json.Unmarshal(body, &re) // a body of another shape leaves Name empty
	switch {
	case code == http.StatusOK:
		return KeyVerdict{Valid: true, Code: code, Status: statusLine(code)}, nil
	case code == http.StatusUnauthorized && re.Name == "restricted_api_key":
		return KeyVerdict{Valid: true, Limited: true, Code: code, Status: statusLine(code),
			Reason: "restricted_api_key: a sending-only key; key rotation needs full_access to create and delete keys"}, nil
	case code == http.StatusForbidden && re.Name == "invalid_api_key",
		code == http.StatusUnauthorized && re.Name == "missing_api_key":
		return KeyVerdict{Code: code, Status: statusLine(code), Reason: re.Name}, nil
	case re.Name != "":
		return KeyVerdict{Code: code, Status: statusLine(code)}, fmt.Errorf("answered %s (%s)", statusLine(code), re.Name)
	default:
		return KeyVerdict{Code: code, Status: statusLine(code)}, fmt.Errorf("answered %s", statusLine(code))
	}
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
