package store

import "github.com/jackc/pgx/v5/pgxpool"

// NewWithPool is a store on a pool the test built, e.g. one whose
// statements are recorded for EXPLAIN (internal/testsupport/pgexplain).
func NewWithPool(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }
