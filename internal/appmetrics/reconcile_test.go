package appmetrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/appmetrics"
)

func TestReconcileRecoveredCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := appmetrics.NewReconcileMetrics(reg)
	v, ok := sample(t, reg, "crmflow_reconcile_recovered_total", map[string]string{"provider": "stripe"})
	require.True(t, ok, "Stripe's series exists before anything was recovered")
	require.Zero(t, v)
	m.AddRecovered("stripe", 2)
	m.AddRecovered("stripe", 1)
	v, _ = sample(t, reg, "crmflow_reconcile_recovered_total", map[string]string{"provider": "stripe"})
	require.Equal(t, 3.0, v)
}
