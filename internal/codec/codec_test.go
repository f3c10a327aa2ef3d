package codec_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
)

type keyInput struct {
	Provider string
	APIKey   string
}

func TestDataConverterRoundTrip(t *testing.T) {
	kr := newKeyring(t, newKey(t))
	dc := codec.NewDataConverter(kr)
	in := keyInput{Provider: "resend", APIKey: newSecret(t, "re_")}

	payloads, err := dc.ToPayloads(&in, "second arg")
	require.NoError(t, err)
	require.Len(t, payloads.Payloads, 2)
	for _, p := range payloads.Payloads {
		require.Equal(t, codec.MetadataEncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
		require.Equal(t, kr.KeyID(), string(p.Metadata[codec.MetadataKeyID]))
		raw, err := proto.Marshal(p)
		require.NoError(t, err)
		require.False(t, bytes.Contains(raw, []byte(in.APIKey)), "the secret is in the encoded payload")
		require.False(t, bytes.Contains(raw, []byte("json/plain")), "the inner encoding is encrypted too")
	}

	var out keyInput
	var second string
	require.NoError(t, dc.FromPayloads(payloads, &out, &second))
	require.Equal(t, in, out)
	require.Equal(t, "second arg", second)
}

func TestDecodePassesUnencryptedPayloads(t *testing.T) {
	plain, err := converter.GetDefaultDataConverter().ToPayload("written before the codec")
	require.NoError(t, err)
	got, err := codec.New(newKeyring(t, newKey(t))).Decode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.True(t, proto.Equal(plain, got[0]))
}

func TestDecodeAfterMasterKeyRotation(t *testing.T) {
	oldKey, nextKey := newKey(t), newKey(t)
	orig, err := converter.GetDefaultDataConverter().ToPayload(keyInput{APIKey: "sk_old_history"})
	require.NoError(t, err)
	sealed, err := codec.New(newKeyring(t, oldKey)).Encode([]*commonpb.Payload{orig})
	require.NoError(t, err)

	rotated := codec.New(newKeyring(t, nextKey, oldKey))
	got, err := rotated.Decode(sealed)
	require.NoError(t, err, "histories written under the previous key still decode")
	require.True(t, proto.Equal(orig, got[0]))

	resealed, err := rotated.Encode(got)
	require.NoError(t, err)
	require.Equal(t, newKeyring(t, nextKey).KeyID(), string(resealed[0].Metadata[codec.MetadataKeyID]))

	_, err = codec.New(newKeyring(t, nextKey)).Decode(sealed)
	require.ErrorIs(t, err, credentials.ErrUnknownKey)
}

func TestDecodeRejectsTampering(t *testing.T) {
	kr := newKeyring(t, newKey(t))
	c := codec.New(kr)
	orig, err := converter.GetDefaultDataConverter().ToPayload("sealed")
	require.NoError(t, err)
	sealed, err := c.Encode([]*commonpb.Payload{orig})
	require.NoError(t, err)

	mutate := func(f func(p *commonpb.Payload)) []*commonpb.Payload {
		p := proto.Clone(sealed[0]).(*commonpb.Payload)
		f(p)
		return []*commonpb.Payload{p}
	}
	for name, tc := range map[string]struct {
		payloads []*commonpb.Payload
		want     error
	}{
		"flipped bit":        {mutate(func(p *commonpb.Payload) { p.Data[len(p.Data)/2] ^= 1 }), credentials.ErrDecrypt},
		"truncated":          {mutate(func(p *commonpb.Payload) { p.Data = p.Data[:len(p.Data)-1] }), credentials.ErrDecrypt},
		"unknown key":        {mutate(func(p *commonpb.Payload) { p.Metadata[codec.MetadataKeyID] = []byte("00000000") }), credentials.ErrUnknownKey},
		"shorter than nonce": {mutate(func(p *commonpb.Payload) { p.Data = p.Data[:5] }), nil},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Decode(tc.payloads)
			require.Error(t, err)
			if tc.want != nil {
				require.True(t, errors.Is(err, tc.want), "%v", err)
			}
		})
	}

	// A credential row's ciphertext, sealed under the same master key, is
	// not a valid payload: the associated data keeps the two apart.
	ct, nonce, kid, err := kr.Seal([]byte("re_row"), []byte("crmflow/credentials/v1\x00resend\x00api_key\x001"))
	require.NoError(t, err)
	_, err = c.Decode([]*commonpb.Payload{{
		Metadata: map[string][]byte{converter.MetadataEncoding: []byte(codec.MetadataEncodingEncrypted), codec.MetadataKeyID: []byte(kid)},
		Data:     append(nonce, ct...),
	}})
	require.ErrorIs(t, err, credentials.ErrDecrypt)
}

func TestFailureConverterEncryptsMessages(t *testing.T) {
	dc := codec.NewDataConverter(newKeyring(t, newKey(t)))
	fc := codec.NewFailureConverter(dc)
	secret := newSecret(t, "sk_test_")

	failure := fc.ErrorToFailure(errors.New("stripe rejected key " + secret))
	raw, err := proto.Marshal(failure)
	require.NoError(t, err)
	require.False(t, bytes.Contains(raw, []byte(secret)), "the error message is in clear text")
	require.NotNil(t, failure.EncodedAttributes)

	back := fc.FailureToError(failure)
	require.ErrorContains(t, back, "stripe rejected key "+secret, "the worker still sees the real message")
}
