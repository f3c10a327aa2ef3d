package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
)

// Which characters a business key may hold, wherever it enters: a path, a
// body, a signed event's metadata.

// poisonKeys are business keys no workflow ID may be made of, by what makes
// them dangerous.
var poisonKeys = map[string]string{
	"slash":                     "o/1",
	"backslash":                 `o\1`,
	"space":                     "o 1",
	"NUL":                       "o\x001",
	"ESC":                       "o\x1b[31m1",
	"C1 NEL U+0085":             "o\u00851",
	"C1 CSI U+009B":             "o\u009b31m1",
	"no-break space U+00A0":     "o\u00a01",
	"invalid UTF-8":             "o\xff1",
	"overlong slash":            "o\xc0\xaf1",
	"LRM U+200E":                "o\u200e1",
	"RLM U+200F":                "o\u200f1",
	"LRE U+202A":                "o\u202a1",
	"RLO U+202E":                "o\u202e1",
	"LRI U+2066":                "o\u20661",
	"PDI U+2069":                "o\u20691",
	"ALM U+061C":                "o\u061c1",
	"ZWSP U+200B":               "o\u200b1",
	"ZWNJ U+200C":               "o\u200c1",
	"ZWJ U+200D":                "o\u200d1",
	"word joiner U+2060":        "o\u20601",
	"BOM U+FEFF":                "\ufeffo1",
	"tag letter U+E0041":        "o\U000E00411",
	"201 bytes":                 strings.Repeat("o", 201),
	"201 bytes, multi-byte":     strings.Repeat("é", 100) + "o",
	"bidi spoof of another key": "o-\u202e1-o",
	"accented letter":           "café-1",
	"Cyrillic look-alike":       "\u043e-1",
	"CJK":                       "注文-1",
}

// TestPoisonKeysInPathsAreRefused: each poison key in a path (order ID,
// SKU, alias ID, referral ID) and in the alias_id of a new alias gets a 4xx
// with a JSON error that names the key and shows it escaped, and nothing is
// stored or started. An order and a product are seeded under each key
// (where PostgreSQL takes it), so only the key check stands between the
// request and a workflow or an inbox row.
func TestPoisonKeysInPathsAreRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: "cus_keys", Email: "keys@example.com"}))
	for _, key := range poisonKeys {
		// Best effort: PostgreSQL refuses NUL and invalid UTF-8, which is fine.
		_ = f.store.InsertOrder(ctx, store.Order{ID: key, CustomerID: "cus_keys", AmountCents: 4200, Currency: "eur"})
		_ = f.store.UpsertProduct(ctx, store.Product{SKU: key, Name: "Mug", PriceCents: 900, Settings: store.StockSettings{Threshold: 5}})
	}
	post := func(path, body string) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, f.url+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		req.Header.Set("Content-Type", "application/json")
		return f.do(req)
	}
	for name, key := range poisonKeys {
		k := url.PathEscape(key)
		type tc struct {
			path, body, kind string
			status           int
			code             string
		}
		cases := []tc{
			{"/v1/orders/" + k + "/confirmation", "", "order ID", 400, "invalid_order_id"},
			{"/v1/inventory/" + k + "/stock-level", `{"level":1}`, "SKU", 400, "invalid_sku"},
			{"/v1/aliases/" + k + "/disable", "", "alias ID", 400, "invalid_alias_id"},
			{"/v1/aliases/" + k + "/claim", `{"customer_id":"cus_keys"}`, "alias ID", 400, "invalid_alias_id"},
			{"/v1/referrals/" + k + "/reward", "", "referral ID", 400, "invalid_referral_id"},
		}
		// JSON text is UTF-8: a decoder reads invalid bytes as U+FFFD, so
		// such a key never reaches the check from a body.
		if utf8.ValidString(key) {
			alias, err := json.Marshal(map[string]string{"alias_id": key, "customer_id": "cus_keys"})
			require.NoError(t, err)
			cases = append(cases, tc{"/v1/aliases", string(alias), "alias ID", 422, "invalid_alias"})
		}
		for _, c := range cases {
			status, body := post(c.path, c.body)
			assert.Equal(t, c.status, status, "%s: %s: %v", name, c.path, body)
			assert.Equal(t, c.code, errorCode(body), "%s: %s", name, c.path)
			e, _ := body["error"].(map[string]any)
			msg, _ := e["message"].(string)
			assert.True(t, strings.HasPrefix(msg, c.kind), "%s: %s: the message names the key: %q", name, c.path, msg)
			assert.False(t, strings.ContainsFunc(msg, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }),
				"%s: %s: the message shows the key escaped: %q", name, c.path, msg)
		}
	}
	// Dot segments cannot reach a handler by path (the mux cleans them
	// away), only in a body.
	for _, key := range []string{".", ".."} {
		status, body := post("/v1/aliases", `{"alias_id":"`+key+`","customer_id":"cus_keys"}`)
		assert.Equal(t, http.StatusUnprocessableEntity, status, "%q: %v", key, body)
		assert.Equal(t, "invalid_alias", errorCode(body), key)
	}
	f.requireNothingStartedOrStored()

	// The allowed side: keys of printable ASCII, punctuation included,
	// pass the check on every route and reach the lookup behind it
	// (nothing is seeded under them: 404).
	for _, key := range []string{"o-1.2_3", "pi_3MtwBwLkdIwHu7ix28a3tqPa", "a:b@c+d~e", "x%y?z#w", ".hidden", strings.Repeat("k", 200)} {
		k := url.PathEscape(key)
		for _, path := range []string{"/v1/orders/" + k + "/confirmation", "/v1/inventory/" + k + "/stock-level",
			"/v1/aliases/" + k + "/disable", "/v1/referrals/" + k + "/reward"} {
			body := ""
			if strings.Contains(path, "stock-level") {
				body = `{"level":1}`
			}
			status, resp := post(path, body)
			assert.Equal(t, http.StatusNotFound, status, "%q is a valid key, only unknown: %s: %v", key, path, resp)
			assert.Equal(t, "not_found", errorCode(resp), "%q: %s", key, path)
		}
	}
}

// TestStripeEventWithAnUnusableOrderIDIsIgnoredNotRetried: Temporal's SDK
// sends the workflow ID in a gRPC header, which gRPC refuses outside
// printable ASCII, so an order ID such as "café-1" can never be handed to
// Temporal. A signed event naming one is acknowledged and kept as ignored
// with its reason, as any event with an unusable order ID is, rather than
// routed to a hand-off the dispatcher would retry forever.
func TestStripeEventWithAnUnusableOrderIDIsIgnoredNotRetried(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for i, orderID := range []string{"café-1", "\u043e-1", "o\u200b1"} {
		id := "evt_unusable_" + strconv.Itoa(i)
		ev := stripeEvent(id, "payment_intent.succeeded", orderID)
		status, body := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
		require.Equal(t, http.StatusOK, status, "body: %v", body)
	}
	// A valid event sent afterwards is handed off: a routed row stored
	// before it would have been claimed (and failed) by then.
	marker := f.handOffMarker("unusable")
	f.waitWorkflowsOnQueue(1)
	rows, err := f.store.Pool().Query(context.Background(),
		`SELECT event_id, handed_off_at IS NOT NULL, attempts, coalesce(last_error, ''), coalesce(workflow_id, '') FROM webhook_inbox WHERE event_id <> $1 ORDER BY id`, marker)
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var id, note, wf string
		var handedOff bool
		var attempts int
		require.NoError(t, rows.Scan(&id, &handedOff, &attempts, &note, &wf))
		n++
		assert.True(t, handedOff, "%s is closed at once", id)
		assert.Zero(t, attempts, "%s is never retried", id)
		assert.Contains(t, note, "metadata.order_id", "%s keeps why it was ignored", id)
		assert.Empty(t, wf, "%s names no workflow", id)
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, 3, n)
	assert.Equal(t, 1, f.workflowsOnQueue(), "only the later valid event started a workflow")
}
