// Package credentials is crmflow's encrypted credential store: provider API
// keys, webhook signing secrets and start-API tokens, versioned in
// PostgreSQL, encrypted with AES-256-GCM under a master key from config, and
// audited on every change. Activities read credentials from here at call
// time, so a key rotation takes effect without a restart.
//
// The same Keyring also encrypts Temporal payloads (see internal/codec), so
// rotating the master key is one operation for both.
//
// It is a library: it imports internal/store and internal/providers only.
package credentials

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Errors of encryption and decryption.
var (
	// ErrUnknownKey means the ciphertext names a master key the keyring does
	// not hold: a previous master key was dropped from config too early.
	ErrUnknownKey = errors.New("unknown master key id")
	// ErrDecrypt means authentication failed: the ciphertext, nonce or
	// associated data was altered, or belongs to another row.
	ErrDecrypt = errors.New("decrypt: message authentication failed")
)

// keyIDLabel separates the key id's hash from any other use of SHA-256 over
// the same key bytes.
const keyIDLabel = "crmflow master key id v1\x00"

// Cipher is AES-256-GCM under one 32-byte master key. It is safe for
// concurrent use.
type Cipher struct {
	aead  cipher.AEAD
	keyID string
}

// NewCipher parses a master key given as standard base64 of 32 bytes (the
// form of CRMFLOW_MASTER_KEY). The error never contains the key.
func NewCipher(masterKeyBase64 string) (*Cipher, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(masterKeyBase64))
	if err != nil {
		return nil, errors.New("master key: not valid base64")
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("master key: %d bytes, want 32 (AES-256)", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	sum := sha256.Sum256(append([]byte(keyIDLabel), key...))
	return &Cipher{aead: aead, keyID: hex.EncodeToString(sum[:4])}, nil
}

// KeyID is a short, stable name of the master key (8 hex digits of a
// labelled SHA-256 of it), stored with every ciphertext so that after the
// master key is rotated the right key can be picked to decrypt old rows. It
// reveals nothing usable about the key.
func (c *Cipher) KeyID() string { return c.keyID }

// Seal encrypts plaintext with a fresh random nonce. aad is authenticated but
// not encrypted: bind it to where the ciphertext lives, so a ciphertext
// copied elsewhere fails to open. Random 96-bit nonces are safe for about
// 2^32 messages per key, far beyond what crmflow encrypts under one master
// key between rotations.
func (c *Cipher) Seal(plaintext, aad []byte) (ciphertext, nonce []byte, keyID string, err error) {
	nonce = make([]byte, c.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, "", fmt.Errorf("seal: read nonce: %w", err)
	}
	return c.aead.Seal(nil, nonce, plaintext, aad), nonce, c.keyID, nil
}

// Open decrypts what Seal returned, with the same aad. A ciphertext sealed
// under another key is ErrUnknownKey; any alteration is ErrDecrypt.
func (c *Cipher) Open(ciphertext, nonce, aad []byte, keyID string) ([]byte, error) {
	if keyID != c.keyID {
		return nil, fmt.Errorf("open: key %q: %w", keyID, ErrUnknownKey)
	}
	if len(nonce) != c.aead.NonceSize() {
		return nil, fmt.Errorf("open: nonce of %d bytes: %w", len(nonce), ErrDecrypt)
	}
	plaintext, err := c.aead.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrDecrypt)
	}
	return plaintext, nil
}

// Keyring encrypts with the current master key and decrypts with the current
// or any previous one, which is how the master key itself is rotated: make
// the new key current and the old one previous, re-encrypt the stored rows
// (Store.Rewrap), and drop the old key once no ciphertext needs it. It is safe
// for concurrent use.
type Keyring struct {
	current *Cipher
	byID    map[string]*Cipher
}

// KeyringOf is NewKeyring of keys: the current master key first, then its
// predecessors (config.Config.MasterKeys).
func KeyringOf(keys []string) (*Keyring, error) {
	if len(keys) == 0 {
		return NewKeyring("")
	}
	return NewKeyring(keys[0], keys[1:]...)
}

// NewKeyring builds a keyring from base64 master keys. Empty previous keys
// are skipped, so an unset "previous key" setting needs no special case.
func NewKeyring(current string, previous ...string) (*Keyring, error) {
	cur, err := NewCipher(current)
	if err != nil {
		return nil, fmt.Errorf("current %w", err)
	}
	kr := &Keyring{current: cur, byID: map[string]*Cipher{cur.KeyID(): cur}}
	for i, p := range previous {
		if strings.TrimSpace(p) == "" {
			continue
		}
		c, err := NewCipher(p)
		if err != nil {
			return nil, fmt.Errorf("previous %w (position %d)", err, i+1)
		}
		if _, dup := kr.byID[c.KeyID()]; !dup {
			kr.byID[c.KeyID()] = c
		}
	}
	return kr, nil
}

// KeyID names the current master key, the one new ciphertexts are sealed
// under.
func (k *Keyring) KeyID() string { return k.current.KeyID() }

// Seal encrypts under the current master key; see Cipher.Seal.
func (k *Keyring) Seal(plaintext, aad []byte) (ciphertext, nonce []byte, keyID string, err error) {
	return k.current.Seal(plaintext, aad)
}

// Open decrypts with whichever master key keyID names; see Cipher.Open.
func (k *Keyring) Open(ciphertext, nonce, aad []byte, keyID string) ([]byte, error) {
	c, ok := k.byID[keyID]
	if !ok {
		return nil, fmt.Errorf("open: key %q: %w", keyID, ErrUnknownKey)
	}
	return c.Open(ciphertext, nonce, aad, keyID)
}
