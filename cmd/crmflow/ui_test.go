package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	stripego "github.com/stripe/stripe-go/v76"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// chromiumPath is where Debian's chromium package (`make chromium`) puts the
// browser.
const chromiumPath = "/usr/bin/chromium"

// uiKnockKey is the Knock key the test configures; its Knock stand-in says
// it expired, so every notification fails for good and its run parks.
const uiKnockKey = "sk_test_ui_expired_key"

// expiredKnock stands in for Knock's API with an expired key: it checks each
// request as Knock would (method, path, bearer key, JSON body with
// recipients) and answers every authenticated trigger with Knock's 401.
type expiredKnock struct {
	mu sync.Mutex
	// renewed makes Knock accept the triggers from now on (the operator
	// fixed the key).
	renewed  bool
	triggers []string // idempotency keys of the triggers refused
	bad      []string // requests Knock would have rejected for their form
	srv      *httptest.Server
}

func newExpiredKnock(t *testing.T) *expiredKnock {
	k := &expiredKnock{}
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		defer k.mu.Unlock()
		wf, isWorkflow := strings.CutPrefix(r.URL.Path, "/v1/workflows/")
		_, isTrigger := strings.CutSuffix(wf, "/trigger")
		var body struct {
			Recipients []json.RawMessage `json:"recipients"`
		}
		switch {
		case r.Method != http.MethodPost || !isWorkflow || !isTrigger:
			k.bad = append(k.bad, r.Method+" "+r.URL.Path)
			http.Error(w, `{"code":"not_found","message":"not found","status":404,"type":"invalid_request_error"}`, http.StatusNotFound)
			return
		case r.Header.Get("Authorization") != "Bearer "+uiKnockKey:
			k.bad = append(k.bad, "no bearer key on "+r.URL.Path)
		case json.NewDecoder(r.Body).Decode(&body) != nil || len(body.Recipients) == 0:
			k.bad = append(k.bad, "trigger without recipients on "+r.URL.Path)
		}
		k.triggers = append(k.triggers, r.Header.Get("Idempotency-Key"))
		w.Header().Set("Content-Type", "application/json")
		if k.renewed {
			_, _ = io.WriteString(w, `{"workflow_run_id":"renewed"}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"code":"api_key_expired","message":"The API key has expired","status":401,"type":"authentication_error"}`)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *expiredKnock) seen() (triggers, bad []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.triggers...), append([]string(nil), k.bad...)
}

// TestTemporalUIListsParkedWorkflows is the operator's view end to end: on
// the dev stack, an order whose confirmation cannot be sent (Knock refuses
// the key) parks, and the Temporal UI, driven in headless Chromium, lists it
// under `CrmflowParked = true` while an order still waiting for its payment
// is listed only without the filter. The page is saved as a PNG artifact.
func TestTemporalUIListsParkedWorkflows(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium is missing (%v): run `make chromium` to install Debian's chromium package", err)
	}
	knock := newExpiredKnock(t)
	ports := freePorts(t)
	cfg := devConfig(t, t.TempDir(), ports,
		"CRMFLOW_KNOCK_API_KEY="+uiKnockKey,
		"CRMFLOW_KNOCK_API_URL="+knock.srv.URL,
		// The embedded UI decodes payloads through crmflow's codec endpoint;
		// let its origin (a free port here) in, as the default does for 8233.
		"CRMFLOW_CODEC_UI_ORIGINS=http://127.0.0.1:"+strconv.Itoa(ports.ui),
	)
	startDev(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/crmflow?sslmode=disable", ports.pg))
	require.NoError(t, err)
	defer st.Close()

	d := &demo{
		cfg: cfg, out: io.Discard, http: &http.Client{Timeout: 10 * time.Second},
		base: "http://" + cfg.HTTPAddr, token: config.DevAPIToken, ids: newDemoIDs(demoSuffix(time.Now())),
	}
	customer := "ui-" + d.ids.suffix + "-customer"
	parkedOrder, waitingOrder := "ui-"+d.ids.suffix+"-parked", "ui-"+d.ids.suffix+"-waiting"
	require.NoError(t, st.UpsertCustomer(ctx, store.Customer{ID: customer, Email: "ui+" + d.ids.suffix + "@example.com", Name: "UI test"}))
	for _, id := range []string{parkedOrder, waitingOrder} {
		require.NoError(t, st.InsertOrder(ctx, store.Order{ID: id, CustomerID: customer, AmountCents: 4200, Currency: "eur"}))
		code, body, err := d.api(ctx, http.MethodPost, "/v1/orders/"+id+"/confirmation")
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, code, string(body))
	}
	// Paid: the order is confirmed, then Knock refuses the confirmation.
	require.NoError(t, d.sendPayment(ctx, stripego.EventTypePaymentIntentSucceeded, parkedOrder, "1"))
	parkedID, waitingID := contract.OrderConfirmationID(parkedOrder), contract.OrderConfirmationID(waitingOrder)

	// Wait for Temporal's visibility to say so, so the UI has it to show.
	c, err := client.Dial(client.Options{HostPort: cfg.Temporal.Address, Namespace: cfg.Temporal.Namespace})
	require.NoError(t, err)
	defer c.Close()
	parkedQuery := contract.ParkedKey.GetName() + " = true"
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: parkedQuery})
		if !assert.NoError(ct, err) {
			return
		}
		var ids []string
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetWorkflowId())
		}
		assert.Equal(ct, []string{parkedID}, ids)
	}, time.Minute, 200*time.Millisecond, "the paid order parks on the refused Knock trigger")
	triggers, bad := knock.seen()
	assert.Empty(t, bad, "requests Knock would have rejected")
	assert.Contains(t, triggers, parkedID+"/notify-confirmation", "the park comes from Knock's refusal")

	browser := startChromium(t, ctx, 900)

	uiBase := "http://" + cfg.Dev.UIAddr + "/namespaces/" + url.PathEscape(cfg.Temporal.Namespace) + "/workflows"
	// Unfiltered, both runs are listed: the page works and shows them.
	all := waitForPageText(t, browser, uiBase, []string{parkedID, waitingID}, nil)
	assert.Contains(t, all, contract.OrderConfirmationType)

	// Filtered by the search attribute (shown as a filter on the page): the
	// parked run, and not the one waiting for its payment.
	filtered := waitForPageText(t, browser, uiBase+"?query="+url.QueryEscape(parkedQuery),
		[]string{parkedID, contract.ParkedKey.GetName()}, []string{waitingID})
	assert.Contains(t, filtered, parkedID)

	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	require.NoError(t, err)
	path := uiArtifactPath(t, "temporal-ui-parked-workflows.png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("Temporal UI screenshot of the parked workflows: %s", path)
}

// waitForPageText opens pageURL and waits until the page's visible text
// holds every one of want and none of absent (the UI renders as its
// requests come back), reloading a rendered page now and then since the
// list does not poll.
// It returns the text it found.
func waitForPageText(t *testing.T, browser context.Context, pageURL string, want, absent []string) string {
	t.Helper()
	require.NoError(t, chromedp.Do(browser, chromedp.Navigate(pageURL)))
	deadline := time.Now().Add(time.Minute)
	lastLoad := time.Now()
	for {
		text, err := chromedp.Run(browser, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		require.NoError(t, err)
		problem := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				problem = fmt.Sprintf("never showed %q", w)
				break
			}
		}
		for _, a := range absent {
			if problem == "" && strings.Contains(text, a) {
				problem = fmt.Sprintf("kept showing %q", a)
			}
		}
		if problem == "" {
			return text
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(browser, chromedp.Evaluate[string](
				`document.readyState + " " + location.href + " html=" + document.documentElement.outerHTML.length + " " + document.documentElement.outerHTML.slice(0, 2000)`))
			t.Fatalf("%s %s; the page (%s) says:\n%s", pageURL, problem, state, text)
		}
		// Reload only a page that has rendered: on a loaded machine a load
		// can take longer than the interval, and reloading it would restart
		// it forever.
		if strings.TrimSpace(text) != "" && time.Since(lastLoad) > 10*time.Second {
			require.NoError(t, chromedp.Do(browser, chromedp.Reload()))
			lastLoad = time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// uiArtifactPath is where a test artifact goes: $CRMFLOW_TEST_ARTIFACTS, else
// .artifacts/ at the repository root (ignored by git).
func uiArtifactPath(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("CRMFLOW_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), ".artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	abs, err := filepath.Abs(filepath.Join(dir, name))
	require.NoError(t, err)
	return abs
}

// startChromium returns a browser context for a headless Chromium, 1440
// pixels wide and height high, closed when the test ends: a fresh profile,
// and nothing that phones home (the machine may have no network; refused
// background connections only slow Chromium down).
func startChromium(t *testing.T, ctx context.Context, height int) context.Context {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, height),
	)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	return browser
}
