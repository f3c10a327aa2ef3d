package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	stripego "github.com/stripe/stripe-go/v76"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// TestConsoleInChromium drives the operator console of `crmflow dev` in a
// headless Chromium, as an operator would: with a demo order whose Knock
// notification parked (the key expired), it signs in with the dev
// operator token, finds the parked run with its Temporal UI link, and once
// Knock takes the key again clicks retry; the run leaves the parked list
// and completes. A screenshot goes to the test's temp dir.
func TestConsoleInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("chromium is missing (%v): run `make chromium` to install Debian's chromium package", err)
	}
	knock := newExpiredKnock(t)
	ports := freePorts(t)
	cfg := devConfig(t, t.TempDir(), ports, "CRMFLOW_KNOCK_API_KEY="+uiKnockKey, "CRMFLOW_KNOCK_API_URL="+knock.srv.URL)
	banner, _ := startDev(t, cfg)
	consoleURL := "http://" + cfg.HTTPAddr + "/console/"
	assert.Contains(t, banner.String(), "Operator console   "+consoleURL, "the banner names the console")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/crmflow?sslmode=disable", ports.pg))
	require.NoError(t, err)
	defer st.Close()

	// The demo's order and payment, through crmflow's own API and webhook.
	d := &demo{
		cfg: cfg, out: io.Discard, http: &http.Client{Timeout: 10 * time.Second},
		base: "http://" + cfg.HTTPAddr, token: config.DevAPIToken, ids: newDemoIDs(demoSuffix(time.Now())),
	}
	customer, order := "console-"+d.ids.suffix+"-customer", "console-"+d.ids.suffix+"-order"
	require.NoError(t, st.UpsertCustomer(ctx, store.Customer{ID: customer, Email: "console+" + d.ids.suffix + "@example.com", Name: "Console test"}))
	require.NoError(t, st.InsertOrder(ctx, store.Order{ID: order, CustomerID: customer, AmountCents: 4200, Currency: "eur"}))
	code, body, err := d.api(ctx, http.MethodPost, "/v1/orders/"+order+"/confirmation")
	require.NoError(t, err)
	require.Equal(t, http.StatusAccepted, code, string(body))
	require.NoError(t, d.sendPayment(ctx, stripego.EventTypePaymentIntentSucceeded, order, "1"))
	workflowID := contract.OrderConfirmationID(order)
	var parked []store.DeadLetter
	require.Eventually(t, func() bool {
		parked, err = st.ListDeadLetters(ctx, store.DeadLetterParked, 10)
		return err == nil && len(parked) == 1
	}, time.Minute, 200*time.Millisecond, "the paid order parks on Knock's refusal")
	require.Equal(t, workflowID, parked[0].WorkflowID)
	row := fmt.Sprintf(`tr[data-dead-letter="%d"]`, parked[0].ID)

	browser := startChromium(t, ctx, 1200)
	// Start the browser on its own context: a step's timeout must not
	// bound the browser's life.
	require.NoError(t, chromedp.Do(browser))
	// Sign in: the form, the dev operator token, the console.
	step(t, browser, "sign in",
		chromedp.Navigate(consoleURL),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), config.DevOperatorToken),
		chromedp.Click(chromedp.CSS(`#signin button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("parked")),
		chromedp.WaitVisible(chromedp.CSS(row)),
	)
	operator, err := chromedp.Run(browser, chromedp.Text(chromedp.ID("operator")))
	require.NoError(t, err)
	assert.Equal(t, "dev", operator)
	link, err := chromedp.Run(browser, chromedp.AttributeValue(chromedp.CSS(row+` a[data-field="temporal-link"]`), "href"))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(link.Value, "http://"+cfg.Dev.UIAddr+"/namespaces/default/workflows/"), link.Value)

	// The key works again; retry.
	knock.mu.Lock()
	knock.renewed = true
	knock.mu.Unlock()
	step(t, browser, "retry",
		chromedp.Click(chromedp.CSS(row+` button[value="retry"]`)),
		chromedp.WaitVisible(chromedp.ID("notice")),
	)
	notice, err := chromedp.Run(browser, chromedp.Text(chromedp.ID("notice")))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("Dead letter %d: retry sent; the run goes on.", parked[0].ID), notice)
	require.Eventually(t, func() bool {
		if err := chromedp.Do(browser, chromedp.Navigate(consoleURL), chromedp.WaitVisible(chromedp.ID("parked"))); err != nil {
			return false
		}
		gone, err := chromedp.Run(browser, chromedp.Evaluate[bool](fmt.Sprintf(`document.querySelector(%q) === null`, row)))
		return err == nil && gone
	}, time.Minute, 500*time.Millisecond, "the run left the parked list")
	got, err := st.GetDeadLetter(ctx, parked[0].ID)
	require.NoError(t, err)
	assert.Equal(t, "dev", got.DecidedBy, "decided as the signed-in operator")
	require.Eventually(t, func() bool {
		o, err := st.GetOrder(ctx, order)
		return err == nil && o.Status == store.OrderConfirmed
	}, time.Minute, 200*time.Millisecond)

	png, err := chromedp.Run(browser, chromedp.FullScreenshot(90))
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "console.png")
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("console screenshot: %s", path)
}

// step runs steps within 30 seconds; when they fail it says where the
// browser was and what the page showed.
func step(t *testing.T, browser context.Context, name string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(browser, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		page, perr := chromedp.Run(browser, chromedp.Evaluate[string](`location.href + "\n" + document.documentElement.outerHTML`))
		t.Fatalf("%s: %v; the page (%v):\n%s", name, err, perr, page)
	}
}
