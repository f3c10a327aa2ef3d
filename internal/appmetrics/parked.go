package appmetrics

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmflow/crmflow/contract"
)

// Querier runs a query; *pgxpool.Pool (store.Store.Pool) is one.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ParkedCollector exposes the workflow runs parked for an operator, counted
// from the open dead letters in PostgreSQL at each scrape.
//
// Counting in the database rather than in the process is what makes the
// number right: every replica reports the same total (alert on max, not
// sum), it survives restarts, and it falls when an operator decides through
// any replica, the CLI or the API. The query uses the dead letters' status
// index and runs once per scrape.
type ParkedCollector struct {
	db      Querier
	timeout time.Duration
	parked  *prometheus.Desc
	up      *prometheus.Desc
}

// NewParkedCollector returns the collector; register it on the registry
// that serves /metrics.
func NewParkedCollector(db Querier) *ParkedCollector {
	return &ParkedCollector{
		db:      db,
		timeout: 2 * time.Second,
		parked: prometheus.NewDesc("crmflow_parked_workflows",
			"Workflow runs parked on a dead letter, waiting for an operator's retry, skip or abort, by workflow type.",
			[]string{"workflow_type"}, nil),
		up: prometheus.NewDesc("crmflow_parked_workflows_up",
			"1 when crmflow_parked_workflows could be read from PostgreSQL at this scrape, else 0.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *ParkedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.parked
	ch <- c.up
}

// Collect implements prometheus.Collector. Every workflow type is exposed,
// at 0 when none is parked, so an alert sees a value rather than no series.
// A failed query leaves the counts out and sets the up gauge to 0, instead
// of failing the whole scrape while PostgreSQL is down.
func (c *ParkedCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	for _, typ := range []string{contract.OrderConfirmationType, contract.ReferralRewardType,
		contract.LowStockAlertType, contract.InventoryScanType, contract.AliasLifecycleType, contract.KeyRotationType} {
		if _, ok := counts[typ]; !ok {
			counts[typ] = 0
		}
	}
	for typ, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(n), typ)
	}
}

// count reads the parked runs per workflow type. A run is parked on at most
// one open dead letter (a unique index), so dead letters count runs.
func (c *ParkedCollector) count(ctx context.Context) (map[string]int64, error) {
	const q = `SELECT workflow_type, count(*) FROM dead_letters WHERE status = 'parked' GROUP BY workflow_type`
	rows, err := c.db.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("count parked workflows: %w", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var typ string
		var n int64
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, fmt.Errorf("scan parked count: %w", err)
		}
		out[typ] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count parked workflows: %w", err)
	}
	return out, nil
}
