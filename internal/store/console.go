package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ConsoleSession is a signed-in operator of the console. The cookie holds a
// random id; only its SHA-256 is stored, so the table gives no usable
// cookie to whoever reads it.
type ConsoleSession struct {
	// Operator is the operator token's name.
	Operator string `json:"operator"`
	// CredentialVersion is the token's version the session is bound to:
	// the session ends when that version is no longer valid.
	CredentialVersion int `json:"credential_version"`
	// CSRF is the token every form of the session carries.
	CSRF string `json:"-"`
	// CreatedAt is when the operator signed in.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the session ends at the latest.
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateConsoleSession stores a session under idHash, and deletes the
// sessions that have expired.
func (s *Store) CreateConsoleSession(ctx context.Context, idHash []byte, sess ConsoleSession) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE expires_at <= now()`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
INSERT INTO console_sessions (id_hash, operator, credential_version, csrf, expires_at)
VALUES ($1, $2, $3, $4, $5)`, idHash, sess.Operator, sess.CredentialVersion, sess.CSRF, sess.ExpiresAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("create console session: %w", err)
	}
	return nil
}

// GetConsoleSession returns the unexpired session stored under idHash, or
// ErrNotFound.
func (s *Store) GetConsoleSession(ctx context.Context, idHash []byte) (ConsoleSession, error) {
	var sess ConsoleSession
	err := s.pool.QueryRow(ctx, `
SELECT operator, credential_version, csrf, created_at, expires_at FROM console_sessions
WHERE id_hash = $1 AND expires_at > now()`, idHash).
		Scan(&sess.Operator, &sess.CredentialVersion, &sess.CSRF, &sess.CreatedAt, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return sess, fmt.Errorf("console session: %w", ErrNotFound)
	}
	if err != nil {
		return sess, fmt.Errorf("console session: %w", err)
	}
	return sess, nil
}

// DeleteConsoleSession ends the session stored under idHash; ending one
// that does not exist is no error.
func (s *Store) DeleteConsoleSession(ctx context.Context, idHash []byte) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM console_sessions WHERE id_hash = $1`, idHash); err != nil {
		return fmt.Errorf("delete console session: %w", err)
	}
	return nil
}
