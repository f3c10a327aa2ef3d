package knock

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// maxRecipients is the most recipients Knock takes in one trigger.
const maxRecipients = 1000

// WorkflowsService triggers and cancels Knock workflows.
type WorkflowsService struct {
	client *Client
}

// Recipient is who a workflow runs for, or the actor behind it: a user by id,
// or an object in a collection. The zero Recipient means "none".
type Recipient struct {
	id         string
	collection string
}

// UserID refers to the Knock user with the given id.
func UserID(id string) Recipient { return Recipient{id: id} }

// Object refers to the object id in a Knock collection.
func Object(collection, id string) Recipient {
	return Recipient{id: id, collection: collection}
}

// IsZero reports whether r refers to nobody; it lets an unset actor be left
// out of the request.
func (r Recipient) IsZero() bool { return r == Recipient{} }

// MarshalJSON renders a user as its id string and an object as {id,
// collection}, the two reference forms Knock accepts.
func (r Recipient) MarshalJSON() ([]byte, error) {
	if r.collection == "" {
		return json.Marshal(r.id)
	}
	return json.Marshal(struct {
		ID         string `json:"id"`
		Collection string `json:"collection"`
	}{r.id, r.collection})
}

// String is the recipient as it appears in logs: "user_1" or "projects/p1".
func (r Recipient) String() string {
	if r.collection == "" {
		return r.id
	}
	return r.collection + "/" + r.id
}

// TriggerParams is the body of a workflow trigger.
type TriggerParams struct {
	// Recipients the workflow runs for; Knock requires at least one and takes
	// at most 1,000.
	Recipients []Recipient `json:"recipients"`
	// Actor is who caused the notification, if anyone.
	Actor Recipient `json:"actor,omitzero"`
	// Data is the workflow's template data.
	Data map[string]any `json:"data,omitempty"`
	// Tenant is the id of the tenant the run belongs to, if any.
	Tenant string `json:"tenant,omitempty"`
	// CancellationKey lets a later Cancel stop this run while it is queued;
	// keep it unique per trigger so a cancel hits only the run intended.
	CancellationKey string `json:"cancellation_key,omitempty"`
}

// RequestOption adjusts one request.
type RequestOption func(*requestOptions)

type requestOptions struct {
	idempotencyKey string
}

// WithIdempotencyKey sends Idempotency-Key, so that Knock runs a retried
// trigger once (for 24 hours, and only once it has answered 2xx). Knock honours
// the header only on triggers, which is why only Trigger takes options.
func WithIdempotencyKey(key string) RequestOption {
	return func(o *requestOptions) { o.idempotencyKey = key }
}

// triggerResponse is Knock's answer to a trigger.
type triggerResponse struct {
	WorkflowRunID string `json:"workflow_run_id"`
}

// consoleRunPrefix starts the run id of a trigger that was recorded, not sent.
const consoleRunPrefix = "console-"

// IsConsoleRun reports whether runID came from a recorded trigger (console
// mode) rather than from Knock.
func IsConsoleRun(runID string) bool { return strings.HasPrefix(runID, consoleRunPrefix) }

// Trigger runs the workflow with the given key for params.Recipients and
// returns the id of the run Knock queued; the run itself happens later.
func (s *WorkflowsService) Trigger(ctx context.Context, key string, params TriggerParams, opts ...RequestOption) (string, error) {
	var o requestOptions
	for _, opt := range opts {
		opt(&o)
	}
	if err := validateTrigger(key, params, o); err != nil {
		return "", fmt.Errorf("trigger workflow %q: %w", key, err)
	}
	if params.Recipients == nil {
		// Knock requires the array even when empty; nil would encode as null.
		params.Recipients = []Recipient{}
	}
	var out triggerResponse
	recorded, err := s.client.api.Do(ctx, providerhttp.Request{
		Method:         http.MethodPost,
		Path:           "/v1/workflows/" + url.PathEscape(key) + "/trigger",
		Body:           params,
		IdempotencyKey: o.idempotencyKey,
	}, &out)
	if err != nil {
		return "", fmt.Errorf("trigger workflow %q: %w", key, err)
	}
	if recorded {
		return consoleRunPrefix + strconv.FormatInt(s.client.api.NextConsoleID(), 10), nil
	}
	if out.WorkflowRunID == "" {
		return "", fmt.Errorf("trigger workflow %q: response has no workflow_run_id", key)
	}
	return out.WorkflowRunID, nil
}

// validateTrigger refuses what Knock would reject or what would make the
// request malformed, before anything is sent.
func validateTrigger(key string, params TriggerParams, o requestOptions) error {
	if strings.TrimSpace(key) == "" {
		return fmt.Errorf("%w: empty workflow key", ErrInvalidParams)
	}
	if len(params.Recipients) > maxRecipients {
		return fmt.Errorf("%w: %d recipients, Knock takes at most %d", ErrInvalidParams, len(params.Recipients), maxRecipients)
	}
	for i, r := range params.Recipients {
		if r.id == "" {
			return fmt.Errorf("%w: recipient %d has no id", ErrInvalidParams, i)
		}
	}
	if n := len(o.idempotencyKey); n > MaxIdempotencyKeyLen {
		return fmt.Errorf("%w: idempotency key is %d characters, Knock takes at most %d", ErrInvalidParams, n, MaxIdempotencyKeyLen)
	}
	if !httpguts.ValidHeaderFieldValue(o.idempotencyKey) {
		// net/http would refuse to send it, which would look like a network
		// error and be retried forever.
		return fmt.Errorf("%w: idempotency key contains characters not allowed in a header", ErrInvalidParams)
	}
	return nil
}

// CancelParams is the body of a workflow cancellation.
type CancelParams struct {
	// CancellationKey is the key given to the triggers to cancel; required.
	CancellationKey string `json:"cancellation_key"`
	// Recipients limits the cancellation to these recipients; empty cancels
	// the runs of every recipient under the key.
	Recipients []Recipient `json:"recipients,omitempty"`
}

// Cancel cancels the queued runs of the workflow that were triggered with
// params.CancellationKey. Runs already past their queue are not affected.
func (s *WorkflowsService) Cancel(ctx context.Context, key string, params CancelParams) error {
	switch {
	case strings.TrimSpace(key) == "":
		return fmt.Errorf("cancel workflow: %w: empty workflow key", ErrInvalidParams)
	case params.CancellationKey == "":
		return fmt.Errorf("cancel workflow %q: %w: empty cancellation key", key, ErrInvalidParams)
	}
	for i, r := range params.Recipients {
		if r.id == "" {
			return fmt.Errorf("cancel workflow %q: %w: recipient %d has no id", key, ErrInvalidParams, i)
		}
	}
	_, err := s.client.api.Do(ctx, providerhttp.Request{
		Method: http.MethodPost,
		Path:   "/v1/workflows/" + url.PathEscape(key) + "/cancel",
		Body:   params,
	}, nil)
	if err != nil {
		return fmt.Errorf("cancel workflow %q: %w", key, err)
	}
	return nil
}
