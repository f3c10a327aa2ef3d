package activities

import (
	"context"
	"encoding/json"
	"fmt"

	"go.temporal.io/sdk/activity"
)

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
	// Record keeps one call console mode did not send.
	Record(ctx context.Context, call ResendCall) error
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
