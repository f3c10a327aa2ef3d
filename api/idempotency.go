package api

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/crmflow/crmflow/internal/httpserver"
)

// maxIdempotencyKeyBytes bounds an Idempotency-Key: it becomes an event id
// stored in the inbox or carried in a workflow's seen set across
// continue-as-new, so its size is not the client's to choose. 255 is what
// Stripe allows for its own idempotency keys.
const maxIdempotencyKeyBytes = 255

// idempotencyKey reads the request's Idempotency-Key header ("" when there
// is none). A key given more than once, longer than 255 bytes, not UTF-8 or
// holding control characters is refused with 400 invalid_idempotency_key,
// and ok is false: the request must then do nothing.
func idempotencyKey(w http.ResponseWriter, r *http.Request) (key string, ok bool) {
	values := r.Header.Values("Idempotency-Key")
	if len(values) > 1 {
		return "", invalidIdempotencyKey(w, "Idempotency-Key is given more than once")
	}
	if len(values) == 1 {
		key = strings.TrimSpace(values[0])
	}
	switch {
	case len(key) > maxIdempotencyKeyBytes:
		return "", invalidIdempotencyKey(w, fmt.Sprintf("Idempotency-Key is longer than %d bytes", maxIdempotencyKeyBytes))
	case !utf8.ValidString(key):
		return "", invalidIdempotencyKey(w, "Idempotency-Key is not valid UTF-8")
	case strings.ContainsFunc(key, unicode.IsControl):
		return "", invalidIdempotencyKey(w, "Idempotency-Key must not contain control characters")
	}
	return key, true
}

// invalidIdempotencyKey answers 400 invalid_idempotency_key; it returns
// false for idempotencyKey's ok.
func invalidIdempotencyKey(w http.ResponseWriter, message string) bool {
	httpserver.WriteError(w, http.StatusBadRequest, "invalid_idempotency_key", message)
	return false
}
