package credentials_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/credentials"
)

// newKey returns a fresh random master key in config form.
func newKey(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	_, err := rand.Read(k)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(k)
}

func TestSealOpenRoundTrip(t *testing.T) {
	c, err := credentials.NewCipher(newKey(t))
	require.NoError(t, err)
	plain, ad := []byte("sk_test_roundtrip"), []byte("stripe/secret_key@v1")

	ct, nonce, kid, err := c.Seal(plain, ad)
	require.NoError(t, err)
	require.Equal(t, c.KeyID(), kid)
	require.False(t, bytes.Contains(ct, plain), "ciphertext holds the plaintext")

	got, err := c.Open(ct, nonce, ad, kid)
	require.NoError(t, err)
	require.Equal(t, plain, got)

	// A fresh nonce each time: the same plaintext never seals the same way.
	ct2, nonce2, _, err := c.Seal(plain, ad)
	require.NoError(t, err)
	require.NotEqual(t, nonce, nonce2)
	require.NotEqual(t, ct, ct2)
}

func TestOpenRejectsTampering(t *testing.T) {
	c, err := credentials.NewCipher(newKey(t))
	require.NoError(t, err)
	ad := []byte("stripe/secret_key@v1")
	ct, nonce, kid, err := c.Seal([]byte("sk_test_tamper"), ad)
	require.NoError(t, err)

	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x01
		return b
	}
	cases := map[string]func() ([]byte, error){
		"ciphertext bit":  func() ([]byte, error) { return c.Open(flip(ct, 0), nonce, ad, kid) },
		"tag bit":         func() ([]byte, error) { return c.Open(flip(ct, len(ct)-1), nonce, ad, kid) },
		"nonce bit":       func() ([]byte, error) { return c.Open(ct, flip(nonce, 3), ad, kid) },
		"short nonce":     func() ([]byte, error) { return c.Open(ct, nonce[:8], ad, kid) },
		"other row's aad": func() ([]byte, error) { return c.Open(ct, nonce, []byte("stripe/secret_key@v2"), kid) },
		"no aad":          func() ([]byte, error) { return c.Open(ct, nonce, nil, kid) },
		"truncated":       func() ([]byte, error) { return c.Open(ct[:len(ct)-1], nonce, ad, kid) },
	}
	for name, open := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := open()
			require.ErrorIs(t, err, credentials.ErrDecrypt)
			require.Nil(t, got)
		})
	}

	t.Run("wrong key", func(t *testing.T) {
		other, err := credentials.NewCipher(newKey(t))
		require.NoError(t, err)
		_, err = other.Open(ct, nonce, ad, kid)
		require.ErrorIs(t, err, credentials.ErrUnknownKey)
		// Even when told the ciphertext is its own, the wrong key fails to
		// authenticate rather than returning garbage.
		_, err = other.Open(ct, nonce, ad, other.KeyID())
		require.ErrorIs(t, err, credentials.ErrDecrypt)
	})
}

func TestNewCipherRejectsBadKeys(t *testing.T) {
	short := base64.StdEncoding.EncodeToString([]byte("sixteen byte key"))
	for name, key := range map[string]string{
		"not base64": "not-base64-at-all!!",
		"16 bytes":   short,
		"empty":      "",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := credentials.NewCipher(key)
			require.Error(t, err)
			if key != "" {
				require.NotContains(t, err.Error(), key, "the error quotes the key")
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	key := newKey(t)
	a, err := credentials.NewCipher(key)
	require.NoError(t, err)
	b, err := credentials.NewCipher(" " + key + "\n")
	require.NoError(t, err)
	c, err := credentials.NewCipher(newKey(t))
	require.NoError(t, err)

	require.Regexp(t, `^[0-9a-f]{8}$`, a.KeyID())
	require.Equal(t, a.KeyID(), b.KeyID(), "same key, same id")
	require.NotEqual(t, a.KeyID(), c.KeyID())
	dev, err := credentials.NewCipher(config.DevMasterKey)
	require.NoError(t, err, "the documented dev master key must be usable")
	require.Regexp(t, `^[0-9a-f]{8}$`, dev.KeyID())
}

func TestKeyringRotation(t *testing.T) {
	oldKey, newKeyB64 := newKey(t), newKey(t)
	before, err := credentials.NewKeyring(oldKey)
	require.NoError(t, err)
	ad := []byte("resend/api_key@v1")
	ct, nonce, oldID, err := before.Seal([]byte("re_old"), ad)
	require.NoError(t, err)

	after, err := credentials.NewKeyring(newKeyB64, "", oldKey)
	require.NoError(t, err)
	require.NotEqual(t, oldID, after.KeyID())

	got, err := after.Open(ct, nonce, ad, oldID)
	require.NoError(t, err, "a previous key must still decrypt")
	require.Equal(t, "re_old", string(got))

	ct2, nonce2, id2, err := after.Seal([]byte("re_new"), ad)
	require.NoError(t, err)
	require.Equal(t, after.KeyID(), id2, "new ciphertexts use the current key")
	_, err = before.Open(ct2, nonce2, ad, id2)
	require.ErrorIs(t, err, credentials.ErrUnknownKey, "the old keyring does not know the new key")

	dropped, err := credentials.NewKeyring(newKeyB64)
	require.NoError(t, err)
	_, err = dropped.Open(ct, nonce, ad, oldID)
	require.ErrorIs(t, err, credentials.ErrUnknownKey)

	_, err = credentials.NewKeyring(newKeyB64, "bad")
	require.ErrorContains(t, err, "previous master key")
}

func TestCredentialHidesSecret(t *testing.T) {
	const secret = "sk_test_never_printed"
	now := time.Now()
	c := credentials.Credential{
		Provider: "stripe", Name: "secret_key", Version: 3, Status: credentials.StatusActive,
		Secret: credentials.Secret(secret), MasterKeyID: "abcd1234", CreatedAt: now, ActivatedAt: &now,
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("credential", "cred", c, "list", []credentials.Credential{c})
	js, err := json.Marshal(map[string]any{"c": c, "list": []credentials.Credential{c}})
	require.NoError(t, err)

	outputs := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"String": c.String(), "slice": fmt.Sprint([]credentials.Credential{c}),
		"slog": logs.String(), "json": string(js), "secret field": fmt.Sprintf("%v %+v", c.Secret, c.Secret),
	}
	for how, out := range outputs {
		require.NotContains(t, out, secret, how)
	}
	require.Contains(t, outputs["%v"], "stripe/secret_key@v3")
	require.True(t, strings.Contains(string(js), `"version":3`), string(js))
	require.Equal(t, secret, c.Secret.Reveal())
}
