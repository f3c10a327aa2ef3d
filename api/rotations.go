package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// Rotations are the operator's key-rotation actions, shared by the HTTP
// API and the CLI so both keep keys out of workflow histories and audit
// every step the same way: a submitted key goes straight into the
// credential store as a pending version and only its version reaches the
// rotation; a rotated token is read from the store, never from a history.
type Rotations struct {
	Starter *starter.Starter
	Keys    KeyStore
	// Audit, when set, records every step (store.Store).
	Audit  Auditor
	Logger *slog.Logger
}

// KeyStore is what the rotation actions need of the credential store
// (credentials.Store implements it).
type KeyStore interface {
	Put(ctx context.Context, provider, name, secret, status string) (int, error)
	Revoke(ctx context.Context, provider, name string, version int) error
	Version(ctx context.Context, provider, name string, version int) (credentials.Credential, error)
}

// ErrBadKey is a submitted key refused for its form before anything was
// stored; the message says why and never quotes the key.
var ErrBadKey = errors.New("malformed key")

// checkKeyForm refuses a key that cannot be the provider's, before it is
// stored: empty, too short or long, not printable ASCII, or without the
// provider's prefix.
func checkKeyForm(p providers.Provider, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: key is empty", ErrBadKey)
	case len(key) < 16 || len(key) > 1024:
		return fmt.Errorf("%w: key of %d characters is malformed", ErrBadKey, len(key))
	}
	for _, r := range key {
		if r <= ' ' || r >= 0x7f {
			return fmt.Errorf("%w: key holds whitespace, control or non-ASCII characters", ErrBadKey)
		}
	}
	if !p.HasKeyPrefix(key) {
		return fmt.Errorf("%w: a %s key starts with %s", ErrBadKey, p.Name, strings.Join(p.KeyPrefixes, " or "))
	}
	if why := p.CheckForm(key); why != "" {
		return fmt.Errorf("%w: %s", ErrBadKey, why)
	}
	return nil
}

// rotated is the provider of a rotation an operator may submit a key to.
func rotated(provider string) (providers.Provider, error) {
	p, ok := providers.Lookup(provider)
	if !ok || !p.Rotated() {
		return p, fmt.Errorf("%w: no key rotation for provider %q", starter.ErrInvalid, provider)
	}
	return p, nil
}

// SubmitKey stores key as a pending version of provider's key and hands
// its version to the waiting rotation, which verifies it with the provider.
// A key the rotation refuses (or does not take) is revoked at once, so no
// stray version is left.
func (r *Rotations) SubmitKey(ctx context.Context, operator, provider, key string) (*contract.SubmitKeyResult, error) {
	p, err := rotated(provider)
	if err != nil {
		return nil, err
	}
	if p.Rotation != providers.RotationManual {
		return nil, fmt.Errorf("%w: the %s rotation makes its own key", starter.ErrInvalid, provider)
	}
	if err := checkKeyForm(p, key); err != nil {
		r.audit(ctx, operator, "key_rotation.submit_key", provider, err, nil)
		return nil, err
	}
	// Most submissions to a rotation that is not waiting are refused here,
	// before a version is stored; the rotation's own check decides the rest.
	if st, err := r.Starter.Status(ctx, contract.KeyRotationID(provider)); err != nil {
		return nil, err
	} else if st.State != "awaiting-key" {
		return nil, fmt.Errorf("%w: the rotation is not waiting for a key (it is %s)", starter.ErrRejected, st.State)
	}
	ctx = credentials.WithActor(ctx, operator)
	version, err := r.Keys.Put(ctx, p.Key.Provider, p.Key.Name, key, credentials.StatusPending)
	if err != nil {
		return nil, fmt.Errorf("store the submitted key: %w", err)
	}
	res, err := r.Starter.SubmitKey(ctx, provider, contract.SubmitKeyInput{Version: version, Operator: operator})
	if err != nil || !res.Valid {
		if rerr := r.Keys.Revoke(context.WithoutCancel(ctx), p.Key.Provider, p.Key.Name, version); rerr != nil {
			err = errors.Join(err, fmt.Errorf("revoke the refused key's version %d: %w", version, rerr))
		}
	}
	details := map[string]any{"version": version}
	if res != nil {
		details["valid"], details["reason"] = res.Valid, res.Reason
	}
	r.audit(ctx, operator, "key_rotation.submit_key", provider, err, details)
	return res, err
}

// FetchToken returns the new start-API token of a crmflow rotation that
// waits for it to be used, read from the credential store; an operator may
// fetch it again until then.
func (r *Rotations) FetchToken(ctx context.Context, operator string) (*contract.KeyRotationToken, error) {
	tok, err := r.Starter.CollectToken(ctx, operator)
	if err == nil && tok.Token == "" {
		slot := providers.CrmflowToken().Key
		var c credentials.Credential
		if c, err = r.Keys.Version(ctx, slot.Provider, slot.Name, tok.Version); err == nil {
			tok.Token = c.Secret.Reveal()
		}
	}
	details := map[string]any{}
	if tok != nil {
		details["version"] = tok.Version
	}
	r.audit(ctx, operator, "key_rotation.token_handout", contract.KeyRotationCrmflow, err, details)
	if err != nil {
		return nil, err
	}
	return tok, nil
}

// Start starts (or joins) provider's rotation.
func (r *Rotations) Start(ctx context.Context, operator, provider string) (starter.Run, error) {
	if _, err := rotated(provider); err != nil {
		return starter.Run{}, err
	}
	run, err := r.Starter.StartKeyRotation(ctx, provider, operator)
	r.audit(ctx, operator, "key_rotation.start", provider, err, map[string]any{"run_id": run.RunID})
	return run, err
}

// Revoked records the operator's word that the old key is revoked at the
// provider.
func (r *Rotations) Revoked(ctx context.Context, operator, provider string) error {
	err := r.Starter.ConfirmOldKeyRevoked(ctx, provider, operator)
	r.audit(ctx, operator, "key_rotation.old_key_revoked", provider, err, nil)
	return err
}

// Acknowledge records the operator's word that the new token is in place.
func (r *Rotations) Acknowledge(ctx context.Context, operator string) error {
	err := r.Starter.AcknowledgeToken(ctx, operator)
	r.audit(ctx, operator, "key_rotation.token_acknowledged", contract.KeyRotationCrmflow, err, nil)
	return err
}

// Cancel ends a rotation waiting for a key or its proof.
func (r *Rotations) Cancel(ctx context.Context, operator, provider string) error {
	err := r.Starter.CancelKeyRotation(ctx, provider, operator)
	r.audit(ctx, operator, "key_rotation.cancel", provider, err, nil)
	return err
}

// audit records one rotation step. The step's effect stands whether or not
// its audit row could be written, so a failed write is logged, not returned.
func (r *Rotations) audit(ctx context.Context, operator, action, provider string, err error, details map[string]any) {
	if r.Audit == nil {
		return
	}
	e := store.AuditEntry{Actor: operator, Action: action, Subject: contract.KeyRotationID(provider), Outcome: outcome(err), Details: details}
	if aerr := r.Audit.Audit(context.WithoutCancel(ctx), e); aerr != nil && r.Logger != nil {
		r.Logger.Error("Could not write the audit log", "action", action, "subject", e.Subject, "error", aerr)
	}
}

// outcome is an audit row's outcome of err.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	return "failed: " + err.Error()
}
