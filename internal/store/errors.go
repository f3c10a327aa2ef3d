package store

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors callers branch on; store methods wrap them with context.
var (
	// ErrNotFound means no row has the given key.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the row is in a state that forbids the change.
	ErrConflict = errors.New("conflict")
)

// IsDataException reports whether PostgreSQL refused a value itself
// (SQLSTATE class 22: a NUL character, an unpaired surrogate in JSON,
// invalid UTF-8). Retrying cannot help, so it is the caller's error, never
// an outage.
func IsDataException(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22")
}
