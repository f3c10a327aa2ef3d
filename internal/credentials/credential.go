package credentials

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Credential statuses, the life of one version: pending (stored, not yet in
// use), active (what activities use; at most one per provider and name),
// retiring (replaced but still accepted until RetireAfter, the grace period),
// revoked (never used again).
const (
	StatusPending  = "pending"
	StatusActive   = "active"
	StatusRetiring = "retiring"
	StatusRevoked  = "revoked"
)

// Credential is one version of a provider secret. Its Secret is a Secret,
// and the Credential's own String, GoString, LogValue and
// MarshalJSON leave it out, so printing, logging or serialising a Credential
// never shows the value; call Secret.Reveal at the one place that needs it.
type Credential struct {
	Provider string
	Name     string
	Version  int
	Status   string
	// Secret is empty in the metadata-only results of Versions.
	Secret Secret
	// ExternalID is the provider's own id for the key (a Resend API key id),
	// so the old key can be deleted at the provider when it is revoked.
	ExternalID string
	// MasterKeyID names the master key the stored ciphertext is sealed under.
	MasterKeyID string
	CreatedAt   time.Time
	ActivatedAt *time.Time
	// RetireAfter ends a retiring version's grace period.
	RetireAfter *time.Time
	RevokedAt   *time.Time
}

// Subject names the version as the audit log does: "provider/name@vN".
func (c Credential) Subject() string { return subject(c.Provider, c.Name, c.Version) }

// String shows the version and status, never the secret.
func (c Credential) String() string { return c.Subject() + " (" + c.Status + ")" }

// GoString keeps %#v from printing the secret.
func (c Credential) GoString() string { return "credentials.Credential{" + c.String() + "}" }

// LogValue keeps slog from printing the secret.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("subject", c.Subject()),
		slog.String("status", c.Status),
		slog.String("masterKeyID", c.MasterKeyID),
	)
}

// credentialJSON is Credential without its secret.
type credentialJSON struct {
	Provider    string     `json:"provider"`
	Name        string     `json:"name"`
	Version     int        `json:"version"`
	Status      string     `json:"status"`
	ExternalID  string     `json:"external_id,omitempty"`
	MasterKeyID string     `json:"master_key_id"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatedAt *time.Time `json:"activated_at,omitempty"`
	RetireAfter *time.Time `json:"retire_after,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

// MarshalJSON writes the metadata only, so an API answer or a workflow
// result holding a Credential cannot leak the value.
func (c Credential) MarshalJSON() ([]byte, error) {
	return json.Marshal(credentialJSON{
		Provider: c.Provider, Name: c.Name, Version: c.Version, Status: c.Status,
		ExternalID: c.ExternalID, MasterKeyID: c.MasterKeyID, CreatedAt: c.CreatedAt,
		ActivatedAt: c.ActivatedAt, RetireAfter: c.RetireAfter, RevokedAt: c.RevokedAt,
	})
}

func subject(provider, name string, version int) string {
	return fmt.Sprintf("%s/%s@v%d", provider, name, version)
}

// DefaultActor is the audit actor of changes made without WithActor: the
// worker itself (seeding from config, automatic rotations).
const DefaultActor = "crmflow"

type actorKey struct{}

// WithActor returns a context whose store changes are audited as done by
// actor (an operator name, "api", "workflow:key-rotation/resend"). The actor
// travels in the context so that the store's methods keep their plain shape.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// Actor returns the audit actor WithActor set, or DefaultActor.
func Actor(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return DefaultActor
}
