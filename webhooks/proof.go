package webhooks

import (
	"context"
	"time"
)

// PendingSecret is a signing secret an operator submitted to a rotation,
// stored but not yet active.
type PendingSecret struct {
	Version int
	Secret  string
}

// Proofs are how a submitted signing secret becomes active only on proof:
// a genuine delivery, one that verified with a secret in use, that also
// verifies with the submitted one shows the provider signs with it, so the
// rotation may activate it. A delivery signed only with a pending secret is
// refused like any unsigned one, so a secret an attacker submitted can
// neither verify their own deliveries nor take the place of the real one.
type Proofs struct {
	// Pending returns provider's pending signing secrets.
	Pending func(ctx context.Context, provider string) ([]PendingSecret, error)
	// Proven tells provider's rotation that version verified a genuine
	// delivery; it may be told again, and ignores versions it did not ask
	// about.
	Proven func(ctx context.Context, provider string, version int) error
}

// proofTimeout bounds telling the rotation, which must not hold up the
// delivery's answer for long; the next genuine delivery tells it again.
const proofTimeout = 2 * time.Second

// prove checks a verified delivery against provider's pending secrets and
// tells the rotation of each that verifies it too. It never changes the
// delivery's answer.
func (h *Handler) prove(ctx context.Context, provider string, verifies func(secret string) bool) {
	p := h.deps.Proofs
	if p == nil || p.Pending == nil || p.Proven == nil {
		return
	}
	pending, err := p.Pending(ctx, provider)
	if err != nil {
		h.deps.Logger.Warn("Could not read pending signing secrets; the next delivery checks again", "provider", provider, "error", err)
		return
	}
	for _, s := range pending {
		if !verifies(s.Secret) {
			continue
		}
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), proofTimeout)
		if err := p.Proven(pctx, provider, s.Version); err != nil {
			h.deps.Logger.Warn("Could not tell the rotation its secret is proven; the next delivery tells it again",
				"provider", provider, "version", s.Version, "error", err)
		} else {
			h.deps.Logger.Info("A genuine delivery verified with the submitted signing secret", "provider", provider, "version", s.Version)
		}
		cancel()
	}
}
