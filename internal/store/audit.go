package store

import (
	"context"
	"fmt"
)

// AuditEntry is one row of the audit log: who did what to what, and how
// it ended. Details never hold a secret: ids, versions, states and
// outcomes only.
type AuditEntry struct {
	// Actor is the operator (from their token), or "schedule", "cli".
	Actor string
	// Action names what was done, e.g. "dead_letter.retry".
	Action string
	// Subject is what it was done to, e.g. "dead-letter/42".
	Subject string
	// Outcome is "ok", or why it failed ("rejected: …").
	Outcome string
	// Details are more facts about it.
	Details map[string]any
}

// Audit appends e to audit_log.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	details := map[string]any{"outcome": e.Outcome}
	for k, v := range e.Details {
		details[k] = v
	}
	const q = `INSERT INTO audit_log (actor, action, subject, details) VALUES ($1, $2, $3, $4)`
	if _, err := s.pool.Exec(ctx, q, e.Actor, e.Action, e.Subject, details); err != nil {
		return fmt.Errorf("audit %s %s: %w", e.Action, e.Subject, err)
	}
	return nil
}
