package knock

import (
	"encoding/json"
	"time"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// Error is a non-2xx answer from Knock. Branch on StatusCode and Code; Message
// is for people and may change.
type Error struct {
	// StatusCode is the HTTP status of the response.
	StatusCode int
	// Code is Knock's machine-readable code, such as "api_key_missing";
	// empty when the body did not carry one.
	Code string
	// Type groups codes, such as "authentication_error".
	Type string
	// Message explains the error; for a body that is not Knock's JSON it is
	// the start of the body, or the status text.
	Message string
	// RetryAfter is how long Knock asked the caller to wait (Retry-After-Ms
	// or Retry-After); zero when it did not say.
	RetryAfter time.Duration
	// RequestID is Knock's x-request-id, for support requests.
	RequestID string
}

// Error describes the failure without any credential.
func (e *Error) Error() string {
	var note string
	if e.RequestID != "" {
		note = "request " + e.RequestID
	}
	return providerhttp.ErrorText("knock", e.StatusCode, e.Code, e.Message, note)
}

// Temporary reports whether the same request may succeed later: rate limited
// (429), request timeout (408) or a server-side failure (5xx).
func (e *Error) Temporary() bool { return providerhttp.Temporary(e.StatusCode) }

// HTTPStatus is StatusCode, for providerhttp.StatusError.
func (e *Error) HTTPStatus() int { return e.StatusCode }

// RetryDelay is RetryAfter, for providerhttp.StatusError.
func (e *Error) RetryDelay() time.Duration { return e.RetryAfter }

// errorBody is every error shape Knock is known to answer with: its API
// errors ({code, message, status, type}) and its router's
// ({"errors": {"detail": ...}}) for paths it does not know.
type errorBody struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Errors  json.RawMessage `json:"errors"`
}

// decodeError builds the *Error for a non-2xx response (the Provider's
// DecodeError); it never fails, because an unreadable body must not hide the
// status.
func decodeError(r *providerhttp.ErrorResponse) error {
	e := &Error{
		StatusCode: r.StatusCode,
		RequestID:  r.Header.Get("X-Request-Id"),
		RetryAfter: r.RetryAfter,
	}
	var body errorBody
	fromAPI := json.Unmarshal(r.Body, &body) == nil && (body.Code != "" || body.Message != "" || len(body.Errors) > 0)
	var msg string
	if fromAPI {
		e.Code, e.Type, msg = body.Code, body.Type, body.Message
		if msg == "" {
			msg = routerDetail(body.Errors)
		}
	}
	e.Message = r.Message(msg, fromAPI)
	return e
}

// routerDetail extracts the message of the router's error shape, falling back
// to the raw JSON for shapes not seen yet.
func routerDetail(raw json.RawMessage) string {
	var obj struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(raw, &obj) == nil && obj.Detail != "" {
		return obj.Detail
	}
	return string(raw)
}
