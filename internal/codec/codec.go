// Package codec encrypts every Temporal payload crmflow writes (workflow and
// activity inputs and results, signals, updates, queries, memos and, with
// NewFailureConverter, error messages), so no secret is ever stored in a
// workflow history in clear text. It uses the credential store's master
// keyring, so payloads written before a master-key rotation still decode.
//
// Operators see decoded payloads in the Temporal UI through NewHandler, the
// remote codec endpoint the UI calls with their bearer token.
//
// It is a library: it imports internal/credentials only.
package codec

import (
	"errors"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"

	"github.com/crmflow/crmflow/internal/credentials"
)

// Metadata of an encrypted payload.
const (
	// MetadataEncodingEncrypted is the encoding of a payload this codec
	// sealed; payloads with any other encoding pass Decode untouched, so
	// histories written before the codec was enabled stay readable.
	MetadataEncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the master key a payload is sealed under (the
	// metadata key Temporal's encryption samples use).
	MetadataKeyID = "encryption-key-id"
)

// payloadAAD separates payload ciphertexts from credential ciphertexts
// sealed under the same master key: neither opens as the other.
var payloadAAD = []byte("crmflow/payload/v1")

// Codec is a converter.PayloadCodec sealing each whole payload (metadata and
// data) with AES-256-GCM: the data is nonce || ciphertext. It is safe for
// concurrent use.
type Codec struct {
	keys *credentials.Keyring
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New returns a codec encrypting under keys' current master key and
// decrypting under any key in keys.
func New(keys *credentials.Keyring) *Codec { return &Codec{keys: keys} }

// Encode implements converter.PayloadCodec.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("crmflow codec: marshal payload: %w", err)
		}
		ct, nonce, keyID, err := c.keys.Seal(plain, payloadAAD)
		if err != nil {
			return payloads, fmt.Errorf("crmflow codec: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(MetadataEncodingEncrypted),
				MetadataKeyID:              []byte(keyID),
			},
			Data: append(nonce, ct...),
		}
	}
	return out, nil
}

// errShort means an encrypted payload is too short to hold a nonce.
var errShort = errors.New("encrypted payload shorter than its nonce")

// nonceSize is AES-GCM's standard nonce size, the one credentials.Cipher uses.
const nonceSize = 12

// Decode implements converter.PayloadCodec.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != MetadataEncodingEncrypted {
			out[i] = p
			continue
		}
		if len(p.GetData()) < nonceSize {
			return payloads, fmt.Errorf("crmflow codec: %w", errShort)
		}
		keyID := string(p.GetMetadata()[MetadataKeyID])
		plain, err := c.keys.Open(p.Data[nonceSize:], p.Data[:nonceSize], payloadAAD, keyID)
		if err != nil {
			return payloads, fmt.Errorf("crmflow codec: %w", err)
		}
		var dec commonpb.Payload
		if err := proto.Unmarshal(plain, &dec); err != nil {
			return payloads, fmt.Errorf("crmflow codec: unmarshal payload: %w", err)
		}
		out[i] = &dec
	}
	return out, nil
}

// NewDataConverter returns the default data converter wrapped in the
// encrypting codec: set it as client.Options.DataConverter of every client
// and worker, so everything they write to Temporal is encrypted.
func NewDataConverter(keys *credentials.Keyring) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), New(keys))
}

// NewFailureConverter returns a failure converter that moves error messages
// and stack traces into an encoded (hence encrypted) payload. Without it a
// provider error quoting a key ("invalid API key re_…") would sit in the
// history in clear text. Set it as client.Options.FailureConverter next to
// the data converter.
func NewFailureConverter(dc converter.DataConverter) converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          dc,
		EncodeCommonAttributes: true,
	})
}
