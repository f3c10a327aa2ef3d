// Package pgexplain checks query plans in tests: it records the statements
// code sends through a pool, and reads PostgreSQL's EXPLAIN (FORMAT JSON)
// of a statement as a tree, so a test can assert that a hot query reads a
// table through an index rather than scanning it whole. Recording the
// statements the code really runs, with its real arguments, keeps the test
// honest when the query text changes.
//
// It is test support: it imports no crmflow package.
package pgexplain

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Statement is one statement sent through a recording pool.
type Statement struct {
	SQL  string
	Args []any
}

// Recorder is a pgx query tracer that keeps every statement it sees.
type Recorder struct {
	mu    sync.Mutex
	stmts []Statement
}

// TraceQueryStart implements pgx.QueryTracer.
func (r *Recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stmts = append(r.stmts, Statement{SQL: data.SQL, Args: append([]any(nil), data.Args...)})
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (r *Recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// Last is the latest statement whose text contains every one of parts.
func (r *Recorder) Last(parts ...string) (Statement, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.stmts) - 1; i >= 0; i-- {
		if containsAll(r.stmts[i].SQL, parts) {
			return r.stmts[i], true
		}
	}
	return Statement{}, false
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// RecordingPool opens a pool on databaseURL whose statements rec records;
// it is closed when the test ends.
func RecordingPool(t testing.TB, databaseURL string) (*pgxpool.Pool, *Recorder) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		t.Fatalf("pgexplain: parse database url: %v", err)
	}
	rec := &Recorder{}
	cfg.ConnConfig.Tracer = rec
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgexplain: open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, rec
}

// Querier runs a query (*pgxpool.Pool, *pgx.Conn).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Node is one node of a plan, with the fields the checks read.
type Node struct {
	Type      string  `json:"Node Type"`
	Relation  string  `json:"Relation Name,omitempty"`
	Index     string  `json:"Index Name,omitempty"`
	Filter    string  `json:"Filter,omitempty"`
	IndexCond string  `json:"Index Cond,omitempty"`
	Plans     []*Node `json:"Plans,omitempty"`
}

// Explain plans st without running it (EXPLAIN without ANALYZE), with its
// arguments bound as the code bound them.
func Explain(ctx context.Context, db Querier, st Statement) (*Node, error) {
	var raw []byte
	if err := db.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+st.SQL, st.Args...).Scan(&raw); err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	var out []struct {
		Plan *Node `json:"Plan"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 || out[0].Plan == nil {
		return nil, fmt.Errorf("explain: unexpected output %s (%v)", raw, err)
	}
	return out[0].Plan, nil
}

// Walk calls fn on n and every node below it.
func (n *Node) Walk(fn func(*Node)) {
	fn(n)
	for _, c := range n.Plans {
		c.Walk(fn)
	}
}

// SeqScans are the nodes that read table whole.
func (n *Node) SeqScans(table string) []*Node {
	var out []*Node
	n.Walk(func(c *Node) {
		if c.Type == "Seq Scan" && c.Relation == table {
			out = append(out, c)
		}
	})
	return out
}

// Indexes are the indexes the plan reads, in plan order (a Bitmap Index
// Scan names its index but not its table).
func (n *Node) Indexes() []string {
	var out []string
	n.Walk(func(c *Node) {
		if c.Index != "" {
			out = append(out, c.Index)
		}
	})
	return out
}

// String renders the plan as an indented outline for failure messages.
func (n *Node) String() string {
	var b strings.Builder
	var walk func(c *Node, depth int)
	walk = func(c *Node, depth int) {
		fmt.Fprintf(&b, "%s%s", strings.Repeat("  ", depth), c.Type)
		if c.Relation != "" {
			fmt.Fprintf(&b, " on %s", c.Relation)
		}
		if c.Index != "" {
			fmt.Fprintf(&b, " using %s", c.Index)
		}
		if c.IndexCond != "" {
			fmt.Fprintf(&b, " [%s]", c.IndexCond)
		}
		if c.Filter != "" {
			fmt.Fprintf(&b, " filter %s", c.Filter)
		}
		b.WriteByte('\n')
		for _, k := range c.Plans {
			walk(k, depth+1)
		}
	}
	walk(n, 0)
	return b.String()
}
