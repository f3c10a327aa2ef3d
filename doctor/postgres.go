package doctor

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/crmflow/crmflow/internal/store"
)

// postgresOutcome is the postgres check's result and, when PostgreSQL
// answered, the store the provider checks read keys from.
type postgresOutcome struct {
	result Result
	store  *store.Store
	// close releases a store opened for the run.
	close func()
}

const postgresFix = "check database_url (CRMFLOW_DATABASE_URL) and that PostgreSQL is running"

// checkPostgres connects, pings, and compares the applied migrations with
// the ones this binary carries.
func (c *Checker) checkPostgres(ctx context.Context) postgresOutcome {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	url := c.DatabaseURL
	if url == "" {
		url = c.Config.DatabaseURL.Reveal()
	}
	if url == "" {
		return postgresOutcome{result: fail("postgres", "no database URL configured", "set database_url (CRMFLOW_DATABASE_URL)")}
	}
	out := postgresOutcome{store: c.Store}
	if out.store == nil {
		st, err := store.Open(ctx, url)
		if err != nil {
			out.result = fail("postgres", "cannot connect: "+scrubURL(err.Error(), url), postgresFix)
			return out
		}
		out.store, out.close = st, st.Close
	} else if err := out.store.Ping(ctx); err != nil {
		out.result = fail("postgres", "no answer: "+scrubURL(err.Error(), url), postgresFix)
		out.store = nil
		return out
	}

	migrations, err := store.MigrationStatus(ctx, url)
	if err != nil {
		out.result = fail("postgres", "cannot read the migration status: "+scrubURL(err.Error(), url), postgresFix)
		return out
	}
	var applied int64
	var pending []string
	for _, m := range migrations {
		if m.Applied {
			applied = max(applied, m.Version)
		} else {
			pending = append(pending, m.Name)
		}
	}
	if len(migrations) == 0 {
		out.result = pass("postgres", "reachable; this binary carries no migrations")
		return out
	}
	latest := migrations[len(migrations)-1].Version
	if len(pending) > 0 {
		out.result = fail("postgres",
			fmt.Sprintf("migrated to %d of %d; pending: %s", applied, latest, strings.Join(pending, ", ")),
			"run `crmflow migrate`")
		return out
	}
	out.result = pass("postgres", fmt.Sprintf("migrated to %d", latest))
	return out
}

// scrubURL keeps the database URL and its password out of a message.
func scrubURL(msg, url string) string {
	msg = strings.ReplaceAll(msg, url, "[database_url]")
	if cfg, err := pgx.ParseConfig(url); err == nil && cfg.Password != "" {
		msg = strings.ReplaceAll(msg, cfg.Password, "[redacted]")
	}
	return msg
}
