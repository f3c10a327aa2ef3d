package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

func TestStockLevelAPIRejectsBadInput(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	require.NoError(t, f.store.UpsertProduct(context.Background(), store.Product{SKU: "sku-1", Name: "Mug", PriceCents: 900, Settings: store.StockSettings{Threshold: 5}}))
	post := func(sku, contentType, body string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, f.url+"/v1/inventory/"+sku+"/stock-level", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return f.do(req)
	}
	for _, c := range []struct {
		sku, ct, body string
		status        int
		code          string
	}{
		{"sku-1", "text/plain", `{"level":1}`, 415, "unsupported_media_type"},
		{"sku-1", "application/json", `{"level":`, 400, "malformed"},
		{"sku-1", "application/json", `{"level":1,"extra":2}`, 400, "malformed"},
		{"sku-1", "application/json", `{}`, 422, "missing_level"},
		{"unknown-sku", "application/json", `{"level":1}`, 404, "not_found"},
		{"bad%20sku", "application/json", `{"level":1}`, 400, "invalid_sku"},
	} {
		status, body := post(c.sku, c.ct, c.body)
		assert.Equal(t, c.status, status, "%s %s", c.sku, c.body)
		assert.Equal(t, c.code, errorCode(body), "%s %s", c.sku, c.body)
	}
	total, _ := f.inboxRows()
	assert.Zero(t, total, "bad input stores nothing")
	status, body := post("sku-1", "application/json", `{"level":3}`)
	assert.Equal(t, http.StatusAccepted, status, body)
}

// TestStockBurstCoalescesToOneAlert: 10,000 stock updates for one SKU through
// the API end with exactly one low-stock alert, a handful of signals and a
// small history.
func TestStockBurstCoalescesToOneAlert(t *testing.T) {
	const coalesce = 300 * time.Millisecond
	f := newFixture(t, fixtureOptions{worker: true, coalesce: coalesce,
		stock: activities.StockDefaults{Debounce: time.Second, Cooldown: time.Hour, EscalateAfter: time.Hour,
			Audience: []string{"ops-1"}}})
	require.NoError(t, f.store.UpsertProduct(context.Background(), store.Product{SKU: "sku-burst", Name: "Mug", PriceCents: 900,
		StockLevel: 100, Settings: store.StockSettings{Threshold: 10, Hysteresis: 5}}))

	const updates, senders = 10_000, 16
	var next atomic.Int64
	var failures atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: senders}}
	start := time.Now()
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > updates {
					return
				}
				// Levels fall from 100 to 3: below the threshold of 10 at the end.
				level := 100 - int(i*97/updates)
				req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/inventory/sku-burst/stock-level",
					strings.NewReader(fmt.Sprintf(`{"level":%d}`, level)))
				req.Header.Set("Authorization", "Bearer "+apiToken)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil || resp.StatusCode != http.StatusAccepted {
					failures.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, failures.Load(), "every update was accepted")

	require.Eventually(t, func() bool { _, pending := f.inboxRows(); return pending == 0 }, time.Minute, 100*time.Millisecond)
	// The edge signals a SKU at most once per coalescing window, so the
	// bound follows how long this machine took to take in and hand off the
	// burst, not a fixed figure a loaded machine would miss.
	maxSignals := int(time.Since(start)/coalesce) + 5
	key := "low-stock"
	require.Eventually(t, func() bool { return f.knock.countWorkflow(key) >= 1 }, time.Minute, 200*time.Millisecond, "alerted")
	// Once the entity has processed every signal and says it alerted (with
	// an hour's cooldown ahead), a second alert would already be in Knock.
	f.waitIdle(contract.LowStockID("sku-burst"))
	require.Eventually(t, func() bool {
		v, err := f.temporal.QueryWorkflow(context.Background(), contract.LowStockID("sku-burst"), "", contract.StatusQuery)
		var st contract.Status
		return err == nil && v.Get(&st) == nil && st.State == contract.StockAlerted
	}, 30*time.Second, 100*time.Millisecond, "the entity is in its alerted state")
	assert.Equal(t, 1, f.knock.countWorkflow(key), "exactly one alert")

	signals, events := 0, 0
	it := f.temporal.GetWorkflowHistory(context.Background(), contract.LowStockID("sku-burst"), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		events++
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
			signals++
		}
	}
	t.Logf("10000 updates became %d signals (bound %d); history has %d events", signals, maxSignals, events)
	assert.LessOrEqual(t, signals, maxSignals, "at most one signal per coalescing window")
	assert.Less(t, events, 2000)
	var coalesced int
	require.NoError(t, f.store.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM webhook_inbox WHERE last_error LIKE 'coalesced into %'`).Scan(&coalesced))
	assert.Equal(t, updates-signals, coalesced, "every update not signalled was coalesced, none lost")
}
