package httpserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// ErrorBody is the one error shape every endpoint answers with:
// {"error":{"code","message"}}.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// The status line is out already; a failed write means the client left.
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers status with an ErrorBody.
func WriteError(w http.ResponseWriter, status int, code, message string) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = code, message
	WriteJSON(w, status, b)
}

// DecodeJSON reads a small JSON body (at most limit bytes, no unknown
// fields, exactly one value) into v; it answers the error itself and
// returns false: 415 not JSON, 413 too large, 400 malformed.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			WriteError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "body must be application/json")
			return false
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Exactly one JSON value: data after it would be ignored silently.
		if _, err = dec.Token(); errors.Is(err, io.EOF) {
			return true
		}
		if err == nil {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		WriteError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body is larger than %d bytes", limit))
		return false
	}
	WriteError(w, http.StatusBadRequest, "malformed", "body is not the expected JSON: "+err.Error())
	return false
}
