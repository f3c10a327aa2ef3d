package codec_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
)

// FuzzCodecHandler feeds the codec endpoint (the one JSON decoder at the
// edge of internal/codec) arbitrary bodies and content types, on both
// paths, with a valid token. Properties: no panic, never a 5xx, every error
// is crmflow's JSON error with a code, and an encode answer decodes back to
// exactly what was sent.
func FuzzCodecHandler(f *testing.F) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		f.Fatal(err)
	}
	kr, err := credentials.NewKeyring(base64.StdEncoding.EncodeToString(key))
	if err != nil {
		f.Fatal(err)
	}
	c := codec.New(kr)
	h := codec.NewHandler(c, bearerAuthorizer(func(context.Context) ([]string, error) { return []string{token}, nil }),
		codec.WithMaxBodyBytes(64<<10))

	plain := `{"payloads":[{"metadata":{"encoding":"anNvbi9wbGFpbg=="},"data":"eyJvcmRlcl9pZCI6Im8xIn0="}]}`
	f.Add(false, "application/json", []byte(plain))
	f.Add(true, "application/json", []byte(plain))
	f.Add(true, "", []byte(`{"payloads":[]}`))
	f.Add(true, "application/json", []byte(`{"payloads":[{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA=="},"data":"AAAA"}]}`))
	f.Add(true, "application/json", []byte(`{"payloads":[{"metadata":{"encoding":"YmluYXJ5L2VuY3J5cHRlZA==","crmflow-key-id":"bm9wZQ=="},"data":""}]}`))
	f.Add(false, "text/plain", []byte(plain))
	f.Add(true, "application/json", []byte(`{"payloads":{}}`))
	f.Add(true, "application/json", []byte(`[`))
	f.Fuzz(func(t *testing.T, decode bool, contentType string, body []byte) {
		path := codec.EncodePath
		if decode {
			path = codec.DecodePath
		}
		status, out := serveCodec(h, path, contentType, body)
		if status >= 500 {
			t.Fatalf("%s answered %d: %s", path, status, out)
		}
		if status >= 400 {
			var e struct {
				Error struct{ Code string } `json:"error"`
			}
			if err := json.Unmarshal(out, &e); err != nil || e.Error.Code == "" {
				t.Fatalf("%s answered %d without a JSON error code: %q", path, status, out)
			}
			return
		}
		var answer commonpb.Payloads
		if err := protojson.Unmarshal(out, &answer); err != nil {
			t.Fatalf("%s answered %d with a body that is not payloads: %v", path, status, err)
		}
		if decode {
			return
		}
		// What was encoded must decode to what was sent.
		var sent commonpb.Payloads
		if err := protojson.Unmarshal(body, &sent); err != nil {
			t.Fatalf("encode accepted a body that is not payloads: %v", err)
		}
		status, back := serveCodec(h, codec.DecodePath, "application/json", out)
		if status != http.StatusOK {
			t.Fatalf("decoding the encoder's answer failed with %d: %s", status, back)
		}
		var decoded commonpb.Payloads
		if err := protojson.Unmarshal(back, &decoded); err != nil {
			t.Fatalf("decode answer: %v", err)
		}
		if len(decoded.Payloads) != len(sent.Payloads) {
			t.Fatalf("round trip changed the number of payloads: %d → %d", len(sent.Payloads), len(decoded.Payloads))
		}
		for i := range sent.Payloads {
			if !proto.Equal(sent.Payloads[i], decoded.Payloads[i]) {
				t.Fatalf("payload %d changed in the round trip", i)
			}
		}
	})
}

func serveCodec(h http.Handler, path, contentType string, body []byte) (int, []byte) {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}
