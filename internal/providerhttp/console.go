package providerhttp

import (
	"context"
	"encoding/json"
	"log/slog"
)

// Call is a request a console client would have sent. It carries no
// credential.
type Call struct {
	// Provider names the client that recorded the call, such as "knock".
	Provider string
	// Method is the HTTP method, such as POST.
	Method string
	// Path is the escaped request path with its query string, if any, such
	// as /v1/workflows/welcome/trigger.
	Path string
	// Body is the exact JSON body that would have been sent; nil for calls
	// without a body.
	Body json.RawMessage
	// IdempotencyKey is the Idempotency-Key header that would have been sent,
	// empty for calls that carry none.
	IdempotencyKey string
}

// Recorder receives the calls of a console client. An error from Record fails
// the call, so a recorder that stores calls can make the caller retry.
type Recorder interface {
	Record(ctx context.Context, call Call) error
}

// LogRecorder logs each call at info level, so a developer without a
// provider's key sees what would have been sent.
type LogRecorder struct {
	// Logger receives the records; nil means slog.Default().
	Logger *slog.Logger
}

// Record logs call and never fails.
func (r LogRecorder) Record(ctx context.Context, call Call) error {
	logger := r.Logger
	if logger == nil {
		logger = slog.Default()
	}
	attrs := []any{"method", call.Method, "path", call.Path}
	if call.Body != nil {
		attrs = append(attrs, "body", string(call.Body))
	}
	if call.IdempotencyKey != "" {
		attrs = append(attrs, "idempotencyKey", call.IdempotencyKey)
	}
	logger.InfoContext(ctx, "CONSOLE MODE "+call.Provider+": would send", attrs...)
	return nil
}
