package appmetrics

import "github.com/prometheus/client_golang/prometheus"

// RetentionMetrics counts the rows the data-retention Schedule removed, by
// table. Counted in the worker that ran each batch, once the batch is
// committed: sum it across replicas. A nil *RetentionMetrics counts
// nothing.
type RetentionMetrics struct {
	deleted *prometheus.CounterVec
}

// NewRetentionMetrics registers crmflow_retention_deleted_total on reg,
// with every one of tables at zero so that a rate or an absence alert has
// a series from the start.
func NewRetentionMetrics(reg prometheus.Registerer, tables ...string) *RetentionMetrics {
	m := &RetentionMetrics{deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmflow_retention_deleted_total",
		Help: "Rows removed by the data-retention Schedule, by table; webhook_inbox_payload counts inbox rows " +
			"whose payload was purged (the row stays for deduplication until webhook_inbox counts it deleted).",
	}, []string{"table"})}
	reg.MustRegister(m.deleted)
	for _, t := range tables {
		m.deleted.WithLabelValues(t)
	}
	return m
}

// Removed adds n rows removed from table.
func (m *RetentionMetrics) Removed(table string, n int64) {
	if m == nil {
		return
	}
	m.deleted.WithLabelValues(table).Add(float64(n))
}
