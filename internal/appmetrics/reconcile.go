package appmetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmflow/crmflow/contract"
)

// ReconcileMetrics counts what the gap-fill reconciliation recovered: events
// the provider has whose webhook never reached the inbox. Any increase
// means deliveries are being lost (an endpoint down, disabled or
// misconfigured) even though the events were saved.
type ReconcileMetrics struct {
	recovered *prometheus.CounterVec
}

// NewReconcileMetrics registers crmflow_reconcile_recovered_total on reg,
// with Stripe's series at 0 so an alert on its increase sees it from the
// start.
func NewReconcileMetrics(reg prometheus.Registerer) *ReconcileMetrics {
	m := &ReconcileMetrics{recovered: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmflow_reconcile_recovered_total",
		Help: "Provider events the reconciliation stored because their webhook never arrived, by provider.",
	}, []string{"provider"})}
	m.recovered.WithLabelValues(contract.ProviderStripe).Add(0)
	reg.MustRegister(m.recovered)
	return m
}

// AddRecovered counts n events of provider recovered.
func (m *ReconcileMetrics) AddRecovered(provider string, n int) {
	m.recovered.WithLabelValues(provider).Add(float64(n))
}
