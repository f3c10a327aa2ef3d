package activities

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
)

// providerVerifier names key verification in error types:
// "KeyVerifierUnavailable".
const providerVerifier = "KeyVerifier"

// CredentialActivities are the credential store's part of the KeyRotation
// workflow: store a new version, activate it, revoke the old one. No
// activity here takes or returns a secret but GenerateToken and
// StoreCredential, which only runs started before secrets stayed out of
// histories still use: CreateToken stores the token it makes and returns
// its version.
type CredentialActivities struct {
	// Store is the encrypted credential store (*credentials.Store in the
	// worker).
	Store credentialStore
}

// credentialStore is what a key rotation needs of the credential store:
// adding a pending version, activating and revoking versions, and reading
// which version is active. Active decrypts the secret too; the activities
// pass on only its version and external id.
type credentialStore interface {
	PutWithExternalID(ctx context.Context, provider, name, secret, externalID, status string) (int, error)
	Activate(ctx context.Context, provider, name string, version int) error
	Revoke(ctx context.Context, provider, name string, version int) error
	Active(ctx context.Context, provider, name string) (credentials.Credential, error)
	ByExternalID(ctx context.Context, provider, name, externalID string) (credentials.Credential, error)
}

var _ credentialStore = (*credentials.Store)(nil)

// StoreCredentialInput is a new version of a credential, stored pending.
type StoreCredentialInput struct {
	Provider string `json:"Provider"`
	Name     string `json:"Name"`
	// Secret is the value itself; it never prints (see LogValue).
	Secret string `json:"Secret"`
	// ExternalID is the provider's id of the key (a Resend key id), or "".
	ExternalID string `json:"ExternalID"`
}

// LogValue leaves the secret out when slog logs the whole input.
func (in StoreCredentialInput) LogValue() slog.Value {
	return slog.GroupValue(slog.String("Provider", in.Provider), slog.String("Name", in.Name),
		slog.String("ExternalID", in.ExternalID))
}

// StoreCredentialOutput is the version StoreCredential stored.
type StoreCredentialOutput struct {
	Version int `json:"Version"`
}

// CredentialRef names one version of a credential.
type CredentialRef struct {
	Provider string `json:"Provider"`
	Name     string `json:"Name"`
	Version  int    `json:"Version"`
}

// ActiveCredentialInput names a credential.
type ActiveCredentialInput struct {
	Provider string `json:"Provider"`
	Name     string `json:"Name"`
}

// ActiveCredentialOutput describes the active version, without its secret.
// Version 0 means no version is active.
type ActiveCredentialOutput struct {
	Version    int    `json:"Version"`
	ExternalID string `json:"ExternalID"`
}

// GenerateTokenInput asks for a random token of Bytes random bytes.
type GenerateTokenInput struct {
	// Bytes is the entropy; below 16 (and when 0) 32 is used.
	Bytes int `json:"Bytes"`
}

// GenerateTokenOutput holds a fresh token, base64url without padding.
type GenerateTokenOutput struct {
	Token string `json:"Token"`
}

// LogValue leaves the token out when slog logs the whole output.
func (GenerateTokenOutput) LogValue() slog.Value { return slog.StringValue(redacted) }

// StoreCredential stores in.Secret as a new pending version. A retry after a
// lost answer stores another pending version; a pending version is never
// used until activated, so the extra one is harmless.
func (a *CredentialActivities) StoreCredential(ctx context.Context, in StoreCredentialInput) (*StoreCredentialOutput, error) {
	v, err := a.Store.PutWithExternalID(actorCtx(ctx), in.Provider, in.Name, in.Secret, in.ExternalID, credentials.StatusPending)
	if err != nil {
		return nil, classifyCredential(err)
	}
	return &StoreCredentialOutput{Version: v}, nil
}

// ActivateCredential makes in.Version the active version; the version active
// until now becomes retiring for the store's grace period. Repeating it is a
// no-op.
func (a *CredentialActivities) ActivateCredential(ctx context.Context, in CredentialRef) error {
	return classifyCredential(a.Store.Activate(actorCtx(ctx), in.Provider, in.Name, in.Version))
}

// RevokeCredential marks in.Version revoked. Repeating it is a no-op.
func (a *CredentialActivities) RevokeCredential(ctx context.Context, in CredentialRef) error {
	return classifyCredential(a.Store.Revoke(actorCtx(ctx), in.Provider, in.Name, in.Version))
}

// ActiveCredential describes the active version of a credential; Version 0
// (no error) when none is active.
func (a *CredentialActivities) ActiveCredential(ctx context.Context, in ActiveCredentialInput) (*ActiveCredentialOutput, error) {
	c, err := a.Store.Active(ctx, in.Provider, in.Name)
	if errors.Is(err, store.ErrNotFound) {
		return &ActiveCredentialOutput{}, nil
	}
	if err != nil {
		return nil, classifyCredential(err)
	}
	return &ActiveCredentialOutput{Version: c.Version, ExternalID: c.ExternalID}, nil
}

// GenerateToken returns in.Bytes random bytes from crypto/rand as
// base64url without padding: a new crmflow start-API token.
func (a *CredentialActivities) GenerateToken(_ context.Context, in GenerateTokenInput) (*GenerateTokenOutput, error) {
	n := in.Bytes
	if n < 16 {
		n = 32
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, transient(providerStore, ErrTypeUnavailable, fmt.Errorf("read random bytes: %w", err), 0)
	}
	return &GenerateTokenOutput{Token: base64.RawURLEncoding.EncodeToString(b)}, nil
}

// CreateTokenInput names where a new start-API token goes.
type CreateTokenInput struct {
	Provider string `json:"provider"`
	Name     string `json:"name"`
	// Bytes is the token's length in random bytes (at least 16).
	Bytes int `json:"bytes,omitempty"`
}

// CreateTokenOutput is the version the new token was stored as.
type CreateTokenOutput struct {
	Version int `json:"version"`
}

// CreateToken makes a new start-API token (random bytes from crypto/rand,
// base64url) and stores it as a pending version: the credential store
// accepts a pending start-API token, and the rotation activates it once it
// is seen in use. The token itself never leaves the store through this
// activity. A retried attempt finds the version its earlier attempt stored
// (recorded with the run's id) instead of making a second token.
func (a *CredentialActivities) CreateToken(ctx context.Context, in CreateTokenInput) (*CreateTokenOutput, error) {
	ctx = actorCtx(ctx)
	run := "rotation:" + activity.GetInfo(ctx).WorkflowExecution.RunID
	if c, err := a.Store.ByExternalID(ctx, in.Provider, in.Name, run); err == nil {
		return &CreateTokenOutput{Version: c.Version}, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, classifyCredential(err)
	}
	gen, err := a.GenerateToken(ctx, GenerateTokenInput{Bytes: in.Bytes})
	if err != nil {
		return nil, err
	}
	v, err := a.Store.PutWithExternalID(ctx, in.Provider, in.Name, gen.Token, run, credentials.StatusPending)
	if err != nil {
		return nil, classifyCredential(err)
	}
	return &CreateTokenOutput{Version: v}, nil
}

// actorCtx audits store changes made by an activity as done by its workflow.
func actorCtx(ctx context.Context) context.Context {
	if !activity.IsActivity(ctx) {
		return ctx
	}
	return credentials.WithActor(ctx, "workflow:"+activity.GetInfo(ctx).WorkflowExecution.ID)
}

// classifyCredential is classifyStore that also makes an argument the store
// can never accept (credentials.ErrInvalid) permanent.
func classifyCredential(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, credentials.ErrInvalid):
		return permanent(providerStore, ErrTypeInvalid, err)
	default:
		return classifyStore(err)
	}
}

// KeyVerifier checks a key an operator submitted by a real authenticated
// call to its provider, before the KeyRotation workflow accepts it.
type KeyVerifier struct {
	// Verify reports whether provider accepts secret and, when it does not,
	// why (a reason that must never quote the secret). An error means no
	// answer was had: return a classified application error, or any other
	// error to have it retried as unavailable.
	Verify func(ctx context.Context, provider, secret string) (bool, string, error)
	// Keys reads a submitted key by its version (*credentials.Store).
	Keys versionReader
}

// versionReader reads one stored version of a key, secret included.
type versionReader interface {
	Version(ctx context.Context, provider, name string, version int) (credentials.Credential, error)
}

var _ versionReader = (*credentials.Store)(nil)

// VerifyKeyInput is a key to check: the version an operator's key was
// stored as (Name and Version), or, from runs started before keys stayed
// out of histories, the key itself (Secret).
type VerifyKeyInput struct {
	Provider string `json:"Provider"`
	// Secret is the key; it never prints (see LogValue).
	Secret  string `json:"Secret"`
	Name    string `json:"name,omitempty"`
	Version int    `json:"version,omitempty"`
}

// LogValue leaves the secret out when slog logs the whole input.
func (in VerifyKeyInput) LogValue() slog.Value {
	return slog.GroupValue(slog.String("Provider", in.Provider))
}

// VerifyKeyOutput is the provider's verdict.
type VerifyKeyOutput struct {
	Valid  bool   `json:"Valid"`
	Reason string `json:"Reason"`
}

// VerifyKey runs Verify. A provider's refusal is an answer (Valid false),
// not an error.
func (v *KeyVerifier) VerifyKey(ctx context.Context, in VerifyKeyInput) (*VerifyKeyOutput, error) {
	if v == nil || v.Verify == nil {
		return nil, permanent(providerVerifier, ErrTypeInvalid, errors.New("no key verifier is configured"))
	}
	secret := in.Secret
	if in.Version > 0 {
		if v.Keys == nil {
			return nil, permanent(providerVerifier, ErrTypeInvalid, errors.New("no credential store to read the submitted key from"))
		}
		c, err := v.Keys.Version(ctx, in.Provider, in.Name, in.Version)
		if err != nil {
			return nil, classifyCredential(err)
		}
		secret = c.Secret.Reveal()
	}
	if secret == "" {
		return &VerifyKeyOutput{Reason: "empty key"}, nil
	}
	ok, reason, err := v.Verify(ctx, in.Provider, secret)
	if err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			return nil, err
		}
		return nil, transient(providerVerifier, ErrTypeUnavailable, err, 0)
	}
	if ok {
		reason = ""
	}
	return &VerifyKeyOutput{Valid: ok, Reason: reason}, nil
}
