// Command standalone runs the embedded Temporal server (temporalserver) as a
// process of its own. Tests start it through internal/testenv and talk to it
// over gRPC, as crmflow talks to any Temporal cluster; keeping the server out
// of the test binaries keeps them small, and keeps `go test -fuzz` from
// rebuilding the whole server with coverage instrumentation.
//
// It prints "history <host:port>" and then "frontend <host:port>" on stdout
// once clients can connect, and
// stops the server when it gets SIGINT or SIGTERM or when its stdin reaches
// end of file. The last makes it exit with its parent, whichever way the
// parent ends.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/crmflow/crmflow/internal/temporalserver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "temporal standalone:", err)
		os.Exit(1)
	}
}

func run() error {
	// Every queue one partition: tests name their queues at random, start
	// with nothing queued, and measure provider rate limits.
	opts := temporalserver.Options{SearchAttributes: map[string]enumspb.IndexedValueType{}, OnePartitionEveryQueue: true}
	flag.IntVar(&opts.FrontendPort, "port", 0, "frontend gRPC port on 127.0.0.1; 0 picks a free one")
	flag.StringVar(&opts.DatabaseFile, "db", "", "SQLite file that persists the server's state; empty keeps it in memory")
	flag.StringVar(&opts.Namespace, "namespace", "default", "namespace registered at start")
	flag.StringVar(&opts.LogLevel, "log-level", "error", "the server's own log level")
	flag.StringVar(&opts.Store, "store", temporalserver.StoreSQLite, "where the server keeps its state: sqlite or postgres")
	flag.StringVar(&opts.PostgresURL, "postgres-url", "", "PostgreSQL server URL for -store postgres (a role that may create databases)")
	flag.StringVar(&opts.PostgresDatabase, "postgres-db", "temporal", "the server's database for -store postgres; visibility gets <name>_visibility")
	flag.IntVar(&opts.HistoryShards, "shards", 0, "history shards; 0 means 1 on sqlite, 4 on postgres")
	flag.BoolVar(&opts.Cluster, "cluster", false, "join the other servers on the same PostgreSQL database as one cluster")
	flag.Func("search-attribute", "Name=Type (e.g. CrmflowOrderID=Keyword), registered on the namespace; repeatable", func(v string) error {
		name, typ, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return fmt.Errorf("want Name=Type, got %q", v)
		}
		t, err := enumspb.IndexedValueTypeFromString(typ)
		if err != nil || t == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return fmt.Errorf("%q: not a search attribute type (Keyword, Text, Int, Double, Bool, Datetime, KeywordList)", v)
		}
		opts.SearchAttributes[name] = t
		return nil
	})
	flag.Parse()

	srv, err := temporalserver.Start(opts)
	if err != nil {
		return err
	}
	defer srv.Stop()
	fmt.Printf("history %s\n", srv.HistoryAddr())
	fmt.Printf("frontend %s\n", srv.FrontendAddr())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	parentGone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(parentGone)
	}()
	select {
	case <-stop:
	case <-parentGone:
	}
	return nil
}
