package codec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/crmflow/crmflow/internal/codec"
)

const (
	uiOrigin = "http://127.0.0.1:8233"
	token    = "tok_operator"
)

type codecServer struct {
	url   string
	codec *codec.Codec
}

func newCodecServer(t *testing.T) codecServer {
	t.Helper()
	c := codec.New(newKeyring(t, newKey(t)))
	auth := bearerAuthorizer(func(context.Context) ([]string, error) {
		return []string{"tok_retiring", token}, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/codec/", codec.NewHandler(c, auth, codec.WithAllowedOrigins(uiOrigin), codec.WithMaxBodyBytes(16<<10)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return codecServer{url: srv.URL, codec: c}
}

func (s codecServer) post(t *testing.T, path, auth string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+path, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	req.Header.Set("Origin", uiOrigin)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func payloadsJSON(t *testing.T, ps []*commonpb.Payload) []byte {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	require.NoError(t, err)
	return b
}

func readPayloads(t *testing.T, resp *http.Response) []*commonpb.Payload {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(b, &out))
	return out.Payloads
}

func requireError(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	require.Equal(t, status, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var body struct {
		Error struct{ Code, Message string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.Equal(t, code, body.Error.Code)
	require.NotEmpty(t, body.Error.Message)
}

func TestHandlerDecodesWhatTheCodecEncoded(t *testing.T) {
	s := newCodecServer(t)
	secret := newSecret(t, "re_")
	orig, err := converter.GetDefaultDataConverter().ToPayloads(keyInput{APIKey: secret}, 42)
	require.NoError(t, err)
	sealed, err := s.codec.Encode(orig.Payloads)
	require.NoError(t, err)
	body := payloadsJSON(t, sealed)
	require.NotContains(t, string(body), secret)

	resp := s.post(t, codec.DecodePath, "Bearer "+token, body)
	require.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	got := readPayloads(t, resp)
	require.Len(t, got, 2)
	for i := range got {
		require.True(t, proto.Equal(orig.Payloads[i], got[i]), "payload %d", i)
	}

	// Encode, as the UI does for a signal typed in by an operator.
	resp = s.post(t, codec.EncodePath, "Bearer tok_retiring", payloadsJSON(t, orig.Payloads))
	enc := readPayloads(t, resp)
	require.Equal(t, codec.MetadataEncodingEncrypted, string(enc[0].Metadata[converter.MetadataEncoding]))
	back, err := s.codec.Decode(enc)
	require.NoError(t, err)
	require.True(t, proto.Equal(orig.Payloads[0], back[0]))
}

// TestHandlerSpeaksTheSDKProtocol checks the endpoint against the SDK's own
// remote codec client, the one the temporal CLI's --codec-endpoint uses.
func TestHandlerSpeaksTheSDKProtocol(t *testing.T) {
	s := newCodecServer(t)
	remote := converter.NewRemotePayloadCodec(converter.RemotePayloadCodecOptions{
		Endpoint: s.url + "/codec",
		ModifyRequest: func(r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+token)
			return nil
		},
	})
	orig, err := converter.GetDefaultDataConverter().ToPayload("via the remote codec")
	require.NoError(t, err)
	enc, err := remote.Encode([]*commonpb.Payload{orig})
	require.NoError(t, err)
	require.Equal(t, codec.MetadataEncodingEncrypted, string(enc[0].Metadata[converter.MetadataEncoding]))
	dec, err := remote.Decode(enc)
	require.NoError(t, err)
	require.True(t, proto.Equal(orig, dec[0]))
}

func TestHandlerRefusesWithoutToken(t *testing.T) {
	s := newCodecServer(t)
	sealed, err := s.codec.Encode([]*commonpb.Payload{{Data: []byte(`"x"`)}})
	require.NoError(t, err)
	body := payloadsJSON(t, sealed)
	for name, auth := range map[string]string{
		"none": "", "wrong token": "Bearer tok_wrong", "not bearer": "Basic " + token, "empty bearer": "Bearer ",
	} {
		t.Run(name, func(t *testing.T) {
			resp := s.post(t, codec.DecodePath, auth, body)
			requireError(t, resp, http.StatusUnauthorized, "unauthorized")
			require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer")
		})
	}

	failing := bearerAuthorizer(func(context.Context) ([]string, error) {
		return []string{token}, errors.New("database down")
	})
	req := httptest.NewRequest(http.MethodPost, codec.DecodePath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	require.Error(t, failing(req, false), "a token source that fails must refuse")
	rec := httptest.NewRecorder()
	codec.NewHandler(s.codec, nil).ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code, "a nil authorize refuses")
}

func TestHandlerPreflight(t *testing.T) {
	s := newCodecServer(t)
	preflight := func(origin string) *http.Response {
		req, err := http.NewRequest(http.MethodOptions, s.url+codec.DecodePath, nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-namespace")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}

	resp := preflight(uiOrigin)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, "preflight carries no token and must still pass")
	require.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	require.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "content-type", "x-namespace"} {
		require.Contains(t, allowed, h)
	}

	resp = preflight("https://evil.example")
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "other origins get no CORS grant")
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Headers"))
}

func TestHandlerEdgeErrors(t *testing.T) {
	s := newCodecServer(t)
	auth := "Bearer " + token

	big := payloadsJSON(t, []*commonpb.Payload{{Data: bytes.Repeat([]byte("a"), 32<<10)}})
	requireError(t, s.post(t, codec.EncodePath, auth, big), http.StatusRequestEntityTooLarge, "too_large")

	sealed, err := s.codec.Encode([]*commonpb.Payload{{Data: []byte(`"x"`)}})
	require.NoError(t, err)
	sealed[0].Data[len(sealed[0].Data)-1] ^= 1
	requireError(t, s.post(t, codec.DecodePath, auth, payloadsJSON(t, sealed)), http.StatusBadRequest, "codec_failed")
	requireError(t, s.post(t, codec.DecodePath, auth, []byte(`{"payloads":`)), http.StatusBadRequest, "codec_failed")
	requireError(t, s.post(t, "/codec/other", auth, []byte(`{}`)), http.StatusNotFound, "not_found")

	req, err := http.NewRequest(http.MethodPost, s.url+codec.DecodePath, strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	requireError(t, resp, http.StatusUnsupportedMediaType, "unsupported_media_type")

	resp2, err := http.Get(s.url + codec.DecodePath)
	require.NoError(t, err)
	defer resp2.Body.Close()
	requireError(t, resp2, http.StatusMethodNotAllowed, "method_not_allowed")
}

// TestDenialStatusIsAnswered: an authorizer's Denial is answered with its
// own status and code (403 for a token whose scope is too small), and the
// authorizer is told which half of the endpoint is asked for.
func TestDenialStatusIsAnswered(t *testing.T) {
	c := codec.New(newKeyring(t, newKey(t)))
	var asked []bool
	h := codec.NewHandler(c, func(_ *http.Request, encode bool) error {
		asked = append(asked, encode)
		if encode {
			return &codec.Denial{Status: http.StatusForbidden, Code: "forbidden", Message: "operators only"}
		}
		return nil
	})
	for _, path := range []string{codec.DecodePath, codec.EncodePath} {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"payloads":[]}`))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if path == codec.EncodePath {
			require.Equal(t, http.StatusForbidden, rec.Code)
			require.Contains(t, rec.Body.String(), `"forbidden"`)
			require.Empty(t, rec.Header().Get("WWW-Authenticate"))
		} else {
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		}
	}
	require.Equal(t, []bool{false, true}, asked)
}
