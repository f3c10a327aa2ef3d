package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var embedded embed.FS

// migrations is the migrations folder as the root goose expects.
var migrations = func() fs.FS {
	sub, err := fs.Sub(embedded, "migrations")
	if err != nil {
		panic(err) // the path is a compile-time constant embedded above
	}
	return sub
}()

// Migration is one schema migration and whether the database has it.
type Migration struct {
	Version   int64
	Name      string // file name, e.g. 00001_crm_tables.sql
	Applied   bool
	AppliedAt time.Time // zero when not applied
}

// Migrate applies every pending migration. Running it again is a no-op, and
// concurrent runs (several replicas starting at once) are safe: a
// PostgreSQL session advisory lock lets one apply while the others wait,
// then find nothing left to do.
func Migrate(ctx context.Context, databaseURL string) error {
	p, db, err := newProvider(databaseURL)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// MigrationStatus lists every migration known to this binary, oldest first,
// with whether the database has applied it.
func MigrationStatus(ctx context.Context, databaseURL string) ([]Migration, error) {
	p, db, err := newProvider(databaseURL)
	if err != nil {
		return nil, err
	}
	defer func() { _ = db.Close() }()
	statuses, err := p.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]Migration, 0, len(statuses))
	for _, st := range statuses {
		out = append(out, Migration{
			Version:   st.Source.Version,
			Name:      path.Base(st.Source.Path),
			Applied:   st.State == goose.StateApplied,
			AppliedAt: st.AppliedAt,
		})
	}
	return out, nil
}

func newProvider(databaseURL string) (*goose.Provider, *sql.DB, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, nil, fmt.Errorf("parse database url: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	db := stdlib.OpenDB(*cfg)

	// Poll for the lock every second (goose's default is every 5 s, which
	// would make every replica after the first start 5 s late) for up to
	// 5 minutes, goose's default patience.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations,
		goose.WithSessionLocker(locker),
		// Only the embedded SQL files: nothing registered globally by
		// another package can sneak in.
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		_ = db.Close()
		return nil, nil, fmt.Errorf("migration provider: %w", err)
	}
	return p, db, nil
}
