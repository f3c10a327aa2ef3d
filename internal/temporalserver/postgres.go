package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	postgresplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	temporalschema "go.temporal.io/server/schema"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
)

// The schemas of the server module (go.temporal.io/server/schema) a server
// on PostgreSQL applies, the main store's and visibility's; the schema tool
// applies their versioned steps in order, up to SchemaVersion.
const (
	PostgresSchema           = "postgresql/v12/temporal"
	PostgresVisibilitySchema = "postgresql/v12/visibility"
)

// SchemaVersion is the newest versioned step ("1.19") of the named schema
// the server module embeds: the version a server on PostgreSQL brings its
// database to.
func SchemaVersion(name string) (string, error) {
	dir := path.Join(name, "versioned")
	entries, err := fs.ReadDir(temporalschema.Assets(), dir)
	if err != nil {
		return "", fmt.Errorf("read embedded schema %s: %w", dir, err)
	}
	var newest string
	var newestMajor, newestMinor int
	for _, e := range entries {
		var major, minor int
		if !e.IsDir() {
			continue
		}
		if _, err := fmt.Sscanf(e.Name(), "v%d.%d", &major, &minor); err != nil {
			return "", fmt.Errorf("embedded schema %s: step %q is not vMAJOR.MINOR", dir, e.Name())
		}
		if newest == "" || major > newestMajor || (major == newestMajor && minor > newestMinor) {
			newest, newestMajor, newestMinor = fmt.Sprintf("%d.%d", major, minor), major, minor
		}
	}
	if newest == "" {
		return "", fmt.Errorf("embedded schema %s has no versioned steps", dir)
	}
	return newest, nil
}

// preparePostgres creates the server's two databases when they are missing,
// brings their schemas to the versions this server module ships (set up on
// first use, upgraded after a server upgrade, untouched otherwise) and
// registers the namespace. Servers of one cluster may start at the same
// moment, so the work runs under an advisory lock on the admin database.
func preparePostgres(opts Options) (main, visibility *config.SQL, err error) {
	admin, err := postgresSQLConfig(opts.PostgresURL)
	if err != nil {
		return nil, nil, err
	}
	main, visibility = withDatabase(admin, opts.PostgresDatabase), withDatabase(admin, opts.PostgresDatabase+"_visibility")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	unlock, err := lockSetup(ctx, opts.PostgresURL, opts.PostgresDatabase)
	if err != nil {
		return nil, nil, err
	}
	defer unlock()

	logger := log.NewNoopLogger()
	for _, s := range []struct {
		cfg  *config.SQL
		name string
	}{{main, PostgresSchema}, {visibility, PostgresVisibilitySchema}} {
		if err := applySchema(admin, s.cfg, s.name, logger); err != nil {
			return nil, nil, err
		}
	}
	// Despite its package, CreateNamespaces writes through whichever SQL
	// plugin the config names; it leaves an existing namespace alone.
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, nil, fmt.Errorf("namespace config: %w", err)
	}
	if err := sqliteschema.CreateNamespaces(main, ns); err != nil {
		return nil, nil, fmt.Errorf("create namespace %q: %w", opts.Namespace, err)
	}
	return main, visibility, nil
}

// applySchema creates the database if needed, then sets up the schema's
// version tables (a no-op once they exist) and applies every versioned step
// newer than the one recorded there.
func applySchema(admin, target *config.SQL, schemaName string, logger log.Logger) error {
	conn, err := sqltool.NewConnection(admin, logger)
	if err != nil {
		return fmt.Errorf("connect to postgresql: %w", err)
	}
	err = conn.CreateDatabase(target.DatabaseName)
	conn.Close()
	if err != nil {
		return fmt.Errorf("create database %s: %w", target.DatabaseName, err)
	}
	conn, err = sqltool.NewConnection(target, logger)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", target.DatabaseName, err)
	}
	defer conn.Close()
	if err := schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, logger).Run(); err != nil {
		return fmt.Errorf("set up schema versioning in %s: %w", target.DatabaseName, err)
	}
	update := &schema.UpdateConfig{DBName: target.DatabaseName, SchemaName: schemaName}
	if err := schema.NewUpdateSchemaTask(conn, update, logger).Run(); err != nil {
		return fmt.Errorf("update schema %s in %s: %w", schemaName, target.DatabaseName, err)
	}
	return nil
}

// lockSetup holds a session-level advisory lock, keyed by the database name,
// until the returned function runs.
func lockSetup(ctx context.Context, rawURL, database string) (func(), error) {
	conn, err := pgx.Connect(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("connect to postgresql: %w", err)
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte("temporal schema " + database))
	key := int64(h.Sum64())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("lock temporal schema setup: %w", err)
	}
	return func() {
		// Closing the session releases the lock as well.
		_ = conn.Close(context.Background())
	}, nil
}

// postgresSQLConfig turns a postgres:// URL into the server's SQL config for
// the pgx plugin; query parameters (sslmode, …) pass through.
func postgresSQLConfig(rawURL string) (*config.SQL, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return nil, errors.New("temporal postgres store: want a postgres://user:password@host:port/db URL")
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "5432")
	}
	cfg := &config.SQL{
		PluginName:        postgresplugin.PluginNamePGX,
		ConnectAddr:       addr,
		ConnectProtocol:   "tcp",
		User:              u.User.Username(),
		DatabaseName:      strings.TrimPrefix(u.Path, "/"),
		ConnectAttributes: map[string]string{},
		MaxConns:          20,
		MaxIdleConns:      20,
	}
	if p, ok := u.User.Password(); ok {
		cfg.Password = p
	}
	if cfg.DatabaseName == "" {
		cfg.DatabaseName = "postgres"
	}
	for k, v := range u.Query() {
		if len(v) > 0 {
			cfg.ConnectAttributes[k] = v[0]
		}
	}
	return cfg, nil
}

func withDatabase(base *config.SQL, name string) *config.SQL {
	c := *base
	c.DatabaseName = name
	attrs := make(map[string]string, len(base.ConnectAttributes))
	for k, v := range base.ConnectAttributes {
		attrs[k] = v
	}
	c.ConnectAttributes = attrs
	return &c
}
