package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// How long, and of what, an Idempotency-Key may be.

// signalsOf counts the signals in a workflow's history.
func (f *fixture) signalsOf(workflowID string) int {
	f.t.Helper()
	n := 0
	it := f.temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(f.t, err)
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED {
			n++
		}
	}
	return n
}

// TestIdempotencyKeysAreBoundedAndPlainText: the alias command and the
// stock level take an Idempotency-Key of at most 255 bytes of UTF-8 text
// without control characters, given once; anything else is 400
// invalid_idempotency_key, and nothing is signalled or stored. (The alias
// command's key becomes an event id the workflow keeps in its seen set
// across continue-as-new, so its size is the workflow's to carry.)
func TestIdempotencyKeysAreBoundedAndPlainText(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertProduct(ctx, store.Product{SKU: "sku-idem", Name: "Mug", PriceCents: 900, Settings: store.StockSettings{Threshold: 5}}))
	// No worker: the run waits for its first task, and signals pile up in
	// its history where they can be counted.
	_, err := f.starter.CreateAlias(ctx, contract.AliasLifecycleInput{AliasID: "al-idem", CustomerID: "cus_idem"})
	require.NoError(t, err)
	aliasID := contract.AliasID("al-idem")

	post := func(path, body string, keys []string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		req.Header.Set("Content-Type", "application/json")
		for _, k := range keys {
			req.Header.Add("Idempotency-Key", k)
		}
		return f.do(req)
	}
	const (
		aliasPath = "/v1/aliases/al-idem/disable"
		stockPath = "/v1/inventory/sku-idem/stock-level"
	)
	denies := map[string][]string{
		"256 bytes":             {strings.Repeat("k", 256)},
		"8 KiB":                 {strings.Repeat("k", 8<<10)},
		"256 bytes, multi-byte": {strings.Repeat("é", 128)},
		"invalid UTF-8":         {"key-\xff\xfe"},
		"a tab inside":          {"key\tone"},
		"C1 NEL U+0085":         {"key\u0085one"},
		"C1 CSI U+009B":         {"key\u009b31m"},
		"given twice":           {"key-a", "key-b"},
	}
	for name, keys := range denies {
		t.Run("deny "+name, func(t *testing.T) {
			for _, p := range []struct{ path, body string }{{aliasPath, ""}, {stockPath, `{"level":3}`}} {
				status, body := post(p.path, p.body, keys)
				assert.Equal(t, http.StatusBadRequest, status, "%s: %v", p.path, body)
				assert.Equal(t, "invalid_idempotency_key", errorCode(body), p.path)
			}
		})
	}
	total, _ := f.inboxRows()
	assert.Zero(t, total, "no refused stock level is stored")
	assert.Zero(t, f.signalsOf(aliasID), "no refused alias command is signalled")

	allows := map[string]string{
		"255 bytes":             strings.Repeat("k", 255),
		"255 bytes, multi-byte": strings.Repeat("é", 127) + "k",
		"text with spaces":      "Schlüssel 1 — retry",
		"a UUID":                "5f0c1f7e-8a3b-4c1e-9a43-6d2f0b7c9e10",
	}
	for name, key := range allows {
		t.Run("allow "+name, func(t *testing.T) {
			status, body := post(aliasPath, "", []string{key})
			require.Equal(t, http.StatusAccepted, status, "body: %v", body)
			assert.Equal(t, key, body["event_id"])
			status, body = post(stockPath, `{"level":3}`, []string{key})
			require.Equal(t, http.StatusAccepted, status, "body: %v", body)
			assert.Equal(t, "api/"+key, body["event_id"])
			assert.Equal(t, false, body["duplicate"])
			status, body = post(stockPath, `{"level":3}`, []string{key})
			require.Equal(t, http.StatusAccepted, status, "body: %v", body)
			assert.Equal(t, true, body["duplicate"], "a retry with the same key is the same update")
		})
	}
	t.Run("allow none", func(t *testing.T) {
		status, body := post(aliasPath, "", nil)
		require.Equal(t, http.StatusAccepted, status, "body: %v", body)
		assert.True(t, strings.HasPrefix(body["event_id"].(string), "cmd_"), "crmflow makes one: %v", body)
		status, body = post(stockPath, `{"level":3}`, nil)
		require.Equal(t, http.StatusAccepted, status, "body: %v", body)
	})
	total, _ = f.inboxRows()
	assert.Equal(t, len(allows)+1, total)
	assert.Equal(t, len(allows)+1, f.signalsOf(aliasID))
}
