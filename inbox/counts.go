package inbox

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Count is how many inbox rows of one source are in one status.
type Count struct {
	Provider string
	Status   string
	Rows     int64
}

// Counts counts the inbox's rows by source and status, for the
// crmflow_inbox_events_total metric. It reads the whole table (one
// aggregate, no rows sent), so it is meant for a scrape, not a hot path.
func (s *Store) Counts(ctx context.Context) ([]Count, error) {
	const q = `SELECT provider, status, count(*) FROM webhook_inbox GROUP BY provider, status`
	rows, err := s.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("count inbox events: %w", err)
	}
	defer rows.Close()
	var out []Count
	for rows.Next() {
		var c Count
		if err := rows.Scan(&c.Provider, &c.Status, &c.Rows); err != nil {
			return nil, fmt.Errorf("count inbox events: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count inbox events: %w", err)
	}
	return out, nil
}

// CountCollector exposes crmflow_inbox_events_total, the inbox's rows by
// provider and status, counted in PostgreSQL at each scrape. Counting in
// the database keeps the number right across replicas and restarts (every
// replica reports the same total: alert on max, not sum), and an
// operator's replay through any replica or the CLI shows at the next
// scrape.
type CountCollector struct {
	store   *Store
	timeout time.Duration
	events  *prometheus.Desc
	up      *prometheus.Desc
}

// NewCountCollector returns the collector over s; register it on the
// registry that serves /metrics.
func NewCountCollector(s *Store) *CountCollector {
	return &CountCollector{
		store: s,
		// A scrape waits for the count at most this long.
		timeout: 2 * time.Second,
		events: prometheus.NewDesc("crmflow_inbox_events_total",
			"Inbox rows by provider and status (pending, delivered, ignored, unroutable, late, coalesced, dropped), counted in PostgreSQL at scrape time.",
			[]string{"provider", "status"}, nil),
		up: prometheus.NewDesc("crmflow_inbox_events_up",
			"1 when crmflow_inbox_events_total could be read from PostgreSQL at this scrape, else 0.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *CountCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.events
	ch <- c.up
}

// Collect implements prometheus.Collector. Every known provider and status
// is exposed, at 0 when no row has it, so an alert on unroutable or
// dropped events sees a value rather than no series. A failed count leaves
// the counts out and sets the up gauge to 0 instead of failing the scrape
// while PostgreSQL is away.
func (c *CountCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.store.Counts(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	type key struct{ provider, status string }
	rows := map[key]int64{}
	for _, p := range Sources {
		for _, s := range Statuses {
			rows[key{p, s}] = 0
		}
	}
	for _, n := range counts {
		rows[key{n.Provider, n.Status}] = n.Rows
	}
	for k, n := range rows {
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(n), k.provider, k.status)
	}
}
