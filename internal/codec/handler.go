package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// Paths of the remote codec endpoint; configure the Temporal UI's codec
// endpoint as the server's base URL plus "/codec".
const (
	DecodePath = "/codec/decode"
	EncodePath = "/codec/encode"
)

// DefaultMaxBodyBytes caps a codec request: the UI sends one event's
// payloads at a time, far below this.
const DefaultMaxBodyBytes = 4 << 20

// HandlerOption configures NewHandler.
type HandlerOption func(*handler)

// WithAllowedOrigins lets browsers on these origins (scheme://host:port,
// e.g. the Temporal UI at http://127.0.0.1:8233) call the endpoint, with
// credentials. "*" allows any origin, without credentials. No origin is
// allowed by default: the endpoint then serves non-browser clients and
// same-origin pages only.
func WithAllowedOrigins(origins ...string) HandlerOption {
	return func(h *handler) { h.origins = append(h.origins, origins...) }
}

// WithMaxBodyBytes sets the largest request body accepted; larger gets 413.
func WithMaxBodyBytes(n int64) HandlerOption {
	return func(h *handler) { h.maxBody = n }
}

// Authorizer decides whether r may use the endpoint: decode (encode false)
// or encode. nil lets the request through; a *Denial is answered with its
// status (401 no valid token, 403 a token of a lesser scope); any other
// error is 401.
type Authorizer func(r *http.Request, encode bool) error

// Denial is an Authorizer's refusal.
type Denial struct {
	Status  int
	Code    string
	Message string
}

// Error describes the refusal.
func (d *Denial) Error() string { return d.Code + ": " + d.Message }

// handler wraps the SDK's codec HTTP handler with crmflow's edge rules.
type handler struct {
	inner     http.Handler
	authorize Authorizer
	origins   []string
	maxBody   int64
}

// NewHandler serves Temporal's remote codec protocol (POST /codec/decode and
// POST /codec/encode, body and answer {"payloads":[...]}) with
// converter.NewPayloadCodecHTTPHandler, and adds what the SDK handler leaves
// to its user: authorize must accept the request (else 401 or 403), a body limit
// (413), CORS for the Temporal UI (see WithAllowedOrigins; preflight
// OPTIONS requests are answered without authorization, as browsers send
// them without credentials), and errors as JSON {"error":{"code","message"}}.
// A nil authorize refuses every request. Mount it at "/codec/" on the
// server's mux without stripping the prefix: paths are matched in full.
func NewHandler(codec converter.PayloadCodec, authorize Authorizer, opts ...HandlerOption) http.Handler {
	h := &handler{
		inner:     converter.NewPayloadCodecHTTPHandler(codec),
		authorize: authorize,
		maxBody:   DefaultMaxBodyBytes,
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.cors(w, r)
	if r.URL.Path != DecodePath && r.URL.Path != EncodePath {
		writeError(w, http.StatusNotFound, "not_found", "codec endpoints are POST "+DecodePath+" and POST "+EncodePath)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if refused := h.refusal(r); refused != nil {
		if refused.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="crmflow"`)
		}
		writeError(w, refused.Status, refused.Code, refused.Message)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "body must be application/json")
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "body exceeds the codec endpoint's limit")
			return
		}
		writeError(w, http.StatusBadRequest, "bad_body", "could not read the body")
		return
	}

	// The SDK handler answers errors as text/plain; buffer its answer so
	// failures can be rewritten as crmflow's JSON errors.
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	h.inner.ServeHTTP(rec, r2)
	if rec.status >= 400 {
		writeError(w, rec.status, "codec_failed", strings.TrimSpace(rec.body.String()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store") // decoded payloads may hold secrets
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body.Bytes())
}

// cors sets the CORS headers when the request's origin is allowed. The UI
// sends Authorization (the operator's token) and X-Namespace, so both must
// be allowed for the preflight to pass.
func (h *handler) cors(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	switch {
	case slices.Contains(h.origins, origin):
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Credentials", "true")
	case slices.Contains(h.origins, "*"):
		w.Header().Set("Access-Control-Allow-Origin", "*")
	default:
		return
	}
	w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Namespace")
	w.Header().Set("Access-Control-Max-Age", "600")
}

// refusal is why r may not use the endpoint, or nil.
func (h *handler) refusal(r *http.Request) *Denial {
	unauthorized := &Denial{http.StatusUnauthorized, "unauthorized", "a valid bearer token is required"}
	if h.authorize == nil {
		return unauthorized
	}
	err := h.authorize(r, r.URL.Path == EncodePath)
	var d *Denial
	switch {
	case err == nil:
		return nil
	case errors.As(err, &d):
		return d
	}
	return unauthorized
}

// recorder buffers a response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

// writeError answers crmflow's JSON error shape, as the webhooks server does.
func writeError(w http.ResponseWriter, status int, code, message string) {
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	b.Error.Code, b.Error.Message = code, message
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}
