package store

import "errors"

// Sentinel errors callers branch on; store methods wrap them with context.
var (
	// ErrNotFound means no row has the given key.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the row is in a state that forbids the change.
	ErrConflict = errors.New("conflict")
)
