// Package temporalserver embeds a Temporal server (all services in one
// process) and, optionally, the Temporal UI, for `crmflow dev` and for tests.
// It keeps its state in SQLite (the quick start) or in PostgreSQL, where
// several servers sharing one database form one cluster. Production
// deployments point crmflow at a real cluster instead.
//
// It is a library: of crmflow it imports only internal/freeport.
package temporalserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/crmflow/crmflow/internal/freeport"
)

const clusterName = "active"

// Options configures the embedded server.
type Options struct {
	// Host is the interface every service listens on; default 127.0.0.1.
	Host string
	// FrontendPort is the gRPC port clients dial; 0 picks a free port.
	FrontendPort int
	// UIPort serves the Temporal UI when non-zero.
	UIPort int
	// UICodecEndpoint is the payload codec endpoint the UI decodes through.
	UICodecEndpoint string
	// DatabaseFile persists state in this SQLite file; empty keeps it in memory.
	DatabaseFile string
	// Namespace is registered at start (default "default").
	Namespace string
	// SearchAttributes are registered on the namespace when it is created.
	SearchAttributes map[string]enumspb.IndexedValueType
	// OnePartitionQueues get one partition, read and write, instead of
	// Temporal's default four. Matching divides a queue's rate limit (a
	// worker's TaskQueueActivitiesPerSecond) by its read partitions, and a
	// partition with nothing waiting leaves its share unused, so a
	// rate-limited queue with four ran below its rate. Name the
	// rate-limited provider queues here. A server whose file already holds
	// tasks on a named queue's other partitions leaves them there, unread;
	// production lowers write partitions first (docs/production.md).
	OnePartitionQueues []string
	// OnePartitionEveryQueue gives every task queue one partition, for a
	// server started without queued tasks whose queue names are not known
	// in advance (tests).
	OnePartitionEveryQueue bool
	// LogLevel of the server's own log (debug, info, warn, error); default error,
	// since at warn it reports every poll a stopping worker loses.
	LogLevel string

	// Store is where the server keeps its state: StoreSQLite (the default)
	// or StorePostgres.
	Store string
	// PostgresURL reaches the PostgreSQL server for StorePostgres, as a role
	// that may create databases; its database part is only used to connect.
	PostgresURL string
	// PostgresDatabase names the server's own database there (default
	// "temporal"); visibility lives in PostgresDatabase + "_visibility".
	PostgresDatabase string
	// HistoryShards is the number of history shards: default 1 on SQLite,
	// DefaultPostgresHistoryShards on PostgreSQL. It is fixed when a database is first used: a server
	// started later with another number logs a warning and keeps the first.
	HistoryShards int
	// Cluster makes the server find its peers through the membership table
	// of its PostgreSQL database (ringpop), so several servers sharing that
	// database form one cluster and take over each other's shards when one
	// dies. Without it the server runs alone with static hosts.
	Cluster bool
}

// Store names for Options.Store.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
)

// DefaultPostgresHistoryShards is the history shard count of a server on
// PostgreSQL when Options.HistoryShards is 0: the shape the cluster tests
// run, and the NUM_HISTORY_SHARDS of docker-compose.yml. Enough for two or
// three nodes to each own some; the count is fixed once a database is used.
const DefaultPostgresHistoryShards = 4

// Server is a running embedded Temporal server.
type Server struct {
	server       temporal.Server
	ui           *uiserver.Server
	frontendAddr string
	historyAddr  string
	uiAddr       string
	namespace    string
}

// Start builds and starts the server and, if asked, the UI. It returns once the
// frontend accepts connections.
func Start(opts Options) (*Server, error) {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "error"
	}
	switch opts.Store {
	case "", StoreSQLite:
		opts.Store = StoreSQLite
		if opts.HistoryShards == 0 {
			opts.HistoryShards = 1
		}
		if opts.Cluster {
			return nil, errors.New("a Temporal cluster needs the postgres store: SQLite is one process's file")
		}
	case StorePostgres:
		if opts.PostgresURL == "" {
			return nil, errors.New("the postgres store needs a PostgreSQL URL")
		}
		if opts.PostgresDatabase == "" {
			opts.PostgresDatabase = "temporal"
		}
		if opts.HistoryShards == 0 {
			opts.HistoryShards = DefaultPostgresHistoryShards
		}
	default:
		return nil, fmt.Errorf("temporal store %q: want %q or %q", opts.Store, StoreSQLite, StorePostgres)
	}
	if opts.HistoryShards < 1 {
		return nil, fmt.Errorf("history shards must be at least 1, got %d", opts.HistoryShards)
	}
	if opts.FrontendPort == 0 {
		p, err := FreePort(opts.Host)
		if err != nil {
			return nil, err
		}
		opts.FrontendPort = p
	}
	// A port we were told is free until the server binds it; the other
	// services' ports, picked below, must not land on it.
	freeport.Reserve(opts.FrontendPort)
	if opts.UIPort != 0 {
		freeport.Reserve(opts.UIPort)
	}
	// Fail fast with a clear message instead of the server's own retry loop
	// when another process holds a port we were told to use.
	if err := checkPortFree(opts.Host, opts.FrontendPort); err != nil {
		return nil, fmt.Errorf("temporal frontend: %w", err)
	}
	if opts.UIPort != 0 {
		if err := checkPortFree(opts.Host, opts.UIPort); err != nil {
			return nil, fmt.Errorf("temporal ui: %w", err)
		}
	}

	s := &Server{
		frontendAddr: net.JoinHostPort(opts.Host, strconv.Itoa(opts.FrontendPort)),
		namespace:    opts.Namespace,
	}
	cfg, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	s.historyAddr = net.JoinHostPort(opts.Host, strconv.Itoa(cfg.Services["history"].RPC.GRPCPort))
	serverOpts := buildServerOptions(opts, cfg)
	srv, err := temporal.NewServer(serverOpts...)
	if err != nil {
		return nil, fmt.Errorf("new temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	s.server = srv

	if opts.UIPort != 0 {
		s.uiAddr = net.JoinHostPort(opts.Host, strconv.Itoa(opts.UIPort))
		s.ui = uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
			Host:                opts.Host,
			Port:                opts.UIPort,
			TemporalGRPCAddress: s.frontendAddr,
			EnableUI:            true,
			DefaultNamespace:    opts.Namespace,
			Codec:               uiconfig.Codec{Endpoint: opts.UICodecEndpoint},
			CORS:                uiconfig.CORS{CookieInsecure: true},
			HideLogs:            true,
			DisableNewsFetch:    true,
		}))
		uiErr := make(chan error, 1)
		go func() { uiErr <- s.ui.Start() }()
		if err := waitListening(s.uiAddr, uiErr, 30*time.Second); err != nil {
			s.Stop()
			return nil, fmt.Errorf("start temporal ui: %w", err)
		}
	}
	return s, nil
}

// FrontendAddr is the host:port clients dial.
func (s *Server) FrontendAddr() string { return s.frontendAddr }

// HistoryAddr is the host:port of the history service, the name a cluster's
// shard ownership is reported under.
func (s *Server) HistoryAddr() string { return s.historyAddr }

// UIAddr is the host:port of the UI, or "" when it is not served.
func (s *Server) UIAddr() string { return s.uiAddr }

// Namespace is the namespace registered at start.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the UI and the server. It is safe to call more than once.
func (s *Server) Stop() {
	if s.ui != nil {
		s.ui.Stop()
		s.ui = nil
	}
	if s.server != nil {
		// Stop can only fail for services that never started; nothing to do then.
		_ = s.server.Stop()
		s.server = nil
	}
}

func buildServerOptions(opts Options, cfg *config.Config) []temporal.ServerOption {
	logger := log.NewZapLogger(log.BuildZapLogger(log.Config{Level: opts.LogLevel, Format: "console"}))
	dyn := ProductionDynamicConfig(opts)
	// Embedded only: a server sharing one machine with everything else
	// keeps a small cache. ForceSearchAttributesCacheRefreshOnRead, which
	// Temporal's own test servers set and says "should not be turned on in
	// production", stays off: it reads the cluster metadata from the
	// database, under one lock, for every request that carries search
	// attributes and every visibility write. crmflow's search attributes
	// are registered with the namespace before the server starts; one
	// added to a running server becomes usable once the services' namespace
	// caches refresh, within seconds, as on a production server
	// (TestSearchAttributeAddedAtRunTime).
	dyn[dynamicconfig.HistoryCacheHostLevelMaxSize.Key()] = 8192
	serverOpts := []temporal.ServerOption{
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return authorization.NewNoopClaimMapper() }),
		temporal.WithDynamicConfigClient(dyn),
	}
	if !opts.Cluster {
		// Alone, the server needs no membership protocol: every service is
		// the one local host. In a cluster ringpop finds the peers instead.
		hosts := map[primitives.ServiceName]static.Hosts{}
		for name, svc := range cfg.Services {
			hosts[primitives.ServiceName(name)] = static.SingleLocalHost(net.JoinHostPort(opts.Host, strconv.Itoa(svc.RPC.GRPCPort)))
		}
		serverOpts = append(serverOpts, temporal.WithStaticHosts(hosts))
	}
	return serverOpts
}

// ProductionDynamicConfig is the part of the dynamic config Start sets for
// opts that a production cluster needs as well: docker-compose.yml's
// temporal-dynamic-config carries the same keys and values for the options
// `crmflow dev` uses (cmd/crmflow's compose test compares them), so what
// the tests measure on the embedded server is what production gets.
func ProductionDynamicConfig(opts Options) dynamicconfig.StaticClient {
	dyn := dynamicconfig.StaticClient{
		// The Temporal UI's workflow list and counts are visibility calls;
		// the default of 10 a second per frontend throttles an operator's
		// browsing.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
	}
	if partitions := onePartition(opts); partitions != nil {
		dyn[dynamicconfig.MatchingNumTaskqueueReadPartitions.Key()] = partitions
		dyn[dynamicconfig.MatchingNumTaskqueueWritePartitions.Key()] = partitions
	}
	return dyn
}

// onePartition is the partition count OnePartitionQueues and
// OnePartitionEveryQueue ask for, as dynamic config; nil leaves Temporal's
// default.
func onePartition(opts Options) []dynamicconfig.ConstrainedValue {
	if opts.OnePartitionEveryQueue {
		return []dynamicconfig.ConstrainedValue{{Value: 1}}
	}
	var out []dynamicconfig.ConstrainedValue
	for _, q := range opts.OnePartitionQueues {
		out = append(out, dynamicconfig.ConstrainedValue{Constraints: dynamicconfig.Constraints{TaskQueueName: q}, Value: 1})
	}
	return out
}

func buildConfig(opts Options) (*config.Config, error) {
	var cfg config.Config
	switch opts.Store {
	case StorePostgres:
		main, visibility, err := preparePostgres(opts)
		if err != nil {
			return nil, err
		}
		cfg.Persistence.DefaultStore = "postgres"
		cfg.Persistence.VisibilityStore = "postgres-visibility"
		cfg.Persistence.DataStores = map[string]config.DataStore{
			"postgres":            {SQL: main},
			"postgres-visibility": {SQL: visibility},
		}
	default:
		sqlCfg, err := prepareSQLite(opts)
		if err != nil {
			return nil, err
		}
		cfg.Persistence.DefaultStore = "sqlite"
		cfg.Persistence.VisibilityStore = "sqlite"
		cfg.Persistence.DataStores = map[string]config.DataStore{"sqlite": {SQL: sqlCfg}}
	}
	cfg.Persistence.NumHistoryShards = int32(opts.HistoryShards)
	httpPort, err := FreePort(opts.Host)
	if err != nil {
		return nil, err
	}
	cfg.Global.Membership.MaxJoinDuration = 30 * time.Second
	cfg.Global.Membership.BroadcastAddress = opts.Host
	cfg.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             net.JoinHostPort(opts.Host, strconv.Itoa(opts.FrontendPort)),
				HTTPAddress:            net.JoinHostPort(opts.Host, strconv.Itoa(httpPort)),
				// A fixed UUID: the server insists on one and a restart must see the same.
				ClusterID: "5b1c0b7e-6a43-4c5e-9d1e-0c7f6a1d2b3c",
			},
		},
	}
	cfg.DCRedirectionPolicy.Policy = "noop"
	cfg.Services = map[string]config.Service{}
	for _, name := range []string{"frontend", "history", "matching", "worker"} {
		var svc config.Service
		svc.RPC.BindOnIP = opts.Host
		if name == "frontend" {
			svc.RPC.GRPCPort = opts.FrontendPort
			svc.RPC.HTTPPort = httpPort
		} else {
			p, err := FreePort(opts.Host)
			if err != nil {
				return nil, err
			}
			svc.RPC.GRPCPort = p
		}
		if opts.Cluster {
			// FreePort's ports are below 32768, which the SMALLINT
			// cluster_membership.rpc_port needs.
			p, err := FreePort(opts.Host)
			if err != nil {
				return nil, err
			}
			svc.RPC.MembershipPort = p
		}
		cfg.Services[name] = svc
	}
	cfg.Archival.History.State = "disabled"
	cfg.Archival.Visibility.State = "disabled"
	cfg.NamespaceDefaults.Archival.History.State = "disabled"
	cfg.NamespaceDefaults.Archival.Visibility.State = "disabled"
	cfg.PublicClient.HostPort = net.JoinHostPort(opts.Host, strconv.Itoa(opts.FrontendPort))
	return &cfg, nil
}

// prepareSQLite creates the schema on first use of a database file and
// registers the namespace (a no-op when it exists already).
func prepareSQLite(opts Options) (*config.SQL, error) {
	sqlCfg := &config.SQL{PluginName: sqliteplugin.PluginName}
	if opts.DatabaseFile == "" {
		// A random name keeps two in-memory servers in one process apart.
		sqlCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		sqlCfg.DatabaseName = "crmflow-" + strconv.Itoa(rand.IntN(1_000_000_000))
	} else {
		sqlCfg.ConnectAttributes = map[string]string{"mode": "rwc", "_journal_mode": "WAL"}
		sqlCfg.DatabaseName = opts.DatabaseFile
		if _, err := os.Stat(opts.DatabaseFile); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(opts.DatabaseFile), 0o755); err != nil {
				return nil, fmt.Errorf("create temporal data dir: %w", err)
			}
			if err := sqliteschema.SetupSchema(sqlCfg); err != nil {
				return nil, fmt.Errorf("set up temporal sqlite schema: %w", err)
			}
		}
	}
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace config: %w", err)
	}
	if err := sqliteschema.CreateNamespaces(sqlCfg, ns); err != nil {
		return nil, fmt.Errorf("create namespace %q: %w", opts.Namespace, err)
	}
	return sqlCfg, nil
}

// FreePort returns a free TCP port on host for a server to be told before
// it listens, from below the kernel's ephemeral range (internal/freeport).
func FreePort(host string) (int, error) {
	return freeport.Pick(host)
}

func checkPortFree(host string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("port %d on %s is already in use (is another crmflow or temporal running?): %w", port, host, err)
	}
	return l.Close()
}

func waitListening(addr string, exited <-chan error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before listening on %s: %w", addr, err)
		case <-ctx.Done():
			return fmt.Errorf("not listening on %s after %s", addr, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
