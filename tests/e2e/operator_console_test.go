package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/callstats"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/worker"
)

// browser is an operator's browser on the console: it keeps cookies, does
// not follow redirects (the tests check them), and parses every page.
type browser struct {
	t    *testing.T
	f    *fixture
	http *http.Client
}

func newBrowser(f *fixture) *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(f.t, err)
	return &browser{t: f.t, f: f, http: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is a console answer.
type page struct {
	status int
	header http.Header
	body   string
	doc    *html.Node
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	res, err := b.http.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	doc, err := html.Parse(strings.NewReader(string(raw)))
	require.NoError(b.t, err)
	return page{status: res.StatusCode, header: res.Header, body: string(raw), doc: doc}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.f.url+path, nil)
	require.NoError(b.t, err)
	return b.do(req)
}

// post sends a form as a browser on the console's own page does: with
// Origin and Sec-Fetch-Site, unless headers says otherwise ("" removes).
func (b *browser) post(path string, form url.Values, headers map[string]string) page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.f.url+path, strings.NewReader(form.Encode()))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.f.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return b.do(req)
}

// signIn loads the sign-in form and posts token with the form's CSRF
// token.
func (b *browser) signIn(token string) page {
	b.t.Helper()
	form := b.get("/console/")
	require.Equal(b.t, http.StatusOK, form.status)
	return b.post("/console/login", url.Values{"token": {token}, "csrf": {form.csrf(b.t)}}, nil)
}

// console signs in as the fixture's operator and returns the console.
func (b *browser) console() page {
	b.t.Helper()
	res := b.signIn(operatorToken)
	require.Equal(b.t, http.StatusSeeOther, res.status, res.body)
	p := b.get("/console/")
	require.Equal(b.t, http.StatusOK, p.status)
	require.NotNil(b.t, p.byID("integrations"), "signed in: %s", p.body)
	return p
}

// find lists the elements under n that match.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool { return attr(n, key) == val }
}

func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func (p page) byID(id string) *html.Node {
	if got := find(p.doc, hasAttr("id", id)); len(got) > 0 {
		return got[0]
	}
	return nil
}

// csrf is the page's CSRF token (every form carries the same).
func (p page) csrf(t *testing.T) string {
	t.Helper()
	inputs := find(p.doc, hasAttr("name", "csrf"))
	require.NotEmpty(t, inputs, "no form with a CSRF token: %s", p.body)
	return attr(inputs[0], "value")
}

// signInForm says the page is the sign-in form and nothing of the console.
func (p page) signInForm(t *testing.T) {
	t.Helper()
	assert.NotNil(t, p.byID("signin"), "the sign-in form: %s", p.body)
	assert.Nil(t, p.byID("integrations"), "nothing of the console without a session")
}

// field is the text of the data-field cell of row.
func field(row *html.Node, name string) string {
	if got := find(row, hasAttr("data-field", name)); len(got) > 0 {
		return text(got[0])
	}
	return ""
}

func (p page) row(key, val string) *html.Node {
	if got := find(p.doc, hasAttr(key, val)); len(got) > 0 {
		return got[0]
	}
	return nil
}

func sessionCookie(t *testing.T, p page) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == "crmflow_console" {
			return c
		}
	}
	t.Fatalf("no session cookie set: %v", p.header)
	return nil
}

// TestConsoleSignInAllowsOperatorsOnly is the sign-in's matrix: no
// session shows the sign-in form; a missing or wrong form token, a
// cross-site post, an unknown token and a service token are refused; an
// operator token gets a strict session cookie that sign-out, expiry and
// the token's revocation each end.
func TestConsoleSignInAllowsOperatorsOnly(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()

	anon := newBrowser(f)
	anon.get("/console/").signInForm(t)
	res := anon.post("/console/dead-letters/1/retry", url.Values{"csrf": {"x"}}, nil)
	assert.Equal(t, http.StatusUnauthorized, res.status, "an action without a session")
	res.signInForm(t)
	res = anon.post("/console/inbox/1/replay", url.Values{}, map[string]string{"Authorization": "Bearer " + operatorToken})
	assert.Equal(t, http.StatusUnauthorized, res.status, "the console takes no bearer token, only its session")

	// The sign-in form's own CSRF token: a post without the form is refused.
	fresh := newBrowser(f)
	res = fresh.post("/console/login", url.Values{"token": {operatorToken}, "csrf": {"guess"}}, nil)
	assert.Equal(t, http.StatusForbidden, res.status, "no sign-in form was loaded")
	fresh.get("/console/").signInForm(t)
	res = fresh.post("/console/login", url.Values{"token": {operatorToken}, "csrf": {"wrong"}}, nil)
	assert.Equal(t, http.StatusForbidden, res.status, "wrong CSRF token")
	res.signInForm(t)
	res = fresh.post("/console/login", url.Values{"token": {operatorToken}}, nil)
	assert.Equal(t, http.StatusForbidden, res.status, "missing CSRF token")
	form := fresh.get("/console/")
	res = fresh.post("/console/login", url.Values{"token": {operatorToken}, "csrf": {form.csrf(t)}},
		map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	assert.Equal(t, http.StatusForbidden, res.status, "a cross-site sign-in")
	assert.Nil(t, res.header.Values("Set-Cookie"), "no session from a refused sign-in")

	res = fresh.signIn("not-a-token")
	assert.Equal(t, http.StatusUnauthorized, res.status)
	assert.Contains(t, text(res.byID("message")), "not valid")
	res = fresh.signIn(apiToken)
	assert.Equal(t, http.StatusForbidden, res.status, "a service token")
	assert.Contains(t, text(res.byID("message")), "needs an operator token")
	var sessions int
	require.NoError(t, f.store.Pool().QueryRow(ctx, `SELECT count(*) FROM console_sessions`).Scan(&sessions))
	assert.Zero(t, sessions, "no refused sign-in made a session")

	// An operator token: a strict, HttpOnly session cookie (not Secure over
	// plain HTTP; the api package's tests cover TLS).
	op := newBrowser(f)
	res = op.signIn(operatorToken)
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	assert.Equal(t, "/console/", res.header.Get("Location"))
	ck := sessionCookie(t, res)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	assert.False(t, ck.Secure)
	assert.Equal(t, "/console/", ck.Path)
	p := op.get("/console/")
	require.Equal(t, http.StatusOK, p.status)
	assert.Equal(t, operatorName, text(p.byID("operator")))
	for _, id := range []string{"integrations", "inbox", "parked", "rotations"} {
		assert.NotNil(t, p.byID(id), "section %s", id)
	}
	assert.NotContains(t, p.body, operatorToken, "the page never shows the token")
	assert.Contains(t, p.header.Get("Content-Security-Policy"), "default-src 'none'")
	assert.Equal(t, "no-store", p.header.Get("Cache-Control"))
	assert.Equal(t, "same-origin", p.header.Get("Referrer-Policy"), "no-referrer would make browsers send Origin: null")
	var stored string
	require.NoError(t, f.store.Pool().QueryRow(ctx, `SELECT encode(id_hash, 'hex') FROM console_sessions`).Scan(&stored))
	assert.NotContains(t, stored, ck.Value, "only the cookie's hash is stored")

	// Sign-out needs the form's token too, then ends the session for good.
	res = op.post("/console/logout", url.Values{"csrf": {"wrong"}}, nil)
	assert.Equal(t, http.StatusForbidden, res.status)
	assert.NotNil(t, op.get("/console/").byID("integrations"), "a refused sign-out leaves the session")
	res = op.post("/console/logout", url.Values{"csrf": {p.csrf(t)}}, nil)
	assert.Equal(t, http.StatusOK, res.status)
	res.signInForm(t)
	op.get("/console/").signInForm(t)
	replayed := newBrowser(f)
	u, _ := url.Parse(f.url + "/console/")
	replayed.http.Jar.SetCookies(u, []*http.Cookie{{Name: "crmflow_console", Value: ck.Value, Path: "/console/"}})
	replayed.get("/console/").signInForm(t)

	// An expired session shows the sign-in form.
	expiring := newBrowser(f)
	expiring.console()
	_, err := f.store.Pool().Exec(ctx, `UPDATE console_sessions SET expires_at = now() - interval '1 second'`)
	require.NoError(t, err)
	expiring.get("/console/").signInForm(t)

	// Revoking the operator's token ends its sessions.
	revoked := newBrowser(f)
	revoked.console()
	valid, err := f.creds.Valid(ctx, credentials.OperatorTokenProvider, operatorName)
	require.NoError(t, err)
	require.Len(t, valid, 1)
	require.NoError(t, f.creds.Revoke(ctx, credentials.OperatorTokenProvider, operatorName, valid[0].Version))
	revoked.get("/console/").signInForm(t)
	require.NoError(t, f.store.Pool().QueryRow(ctx,
		`SELECT count(*) FROM console_sessions WHERE expires_at > now()`).Scan(&sessions))
	assert.Zero(t, sessions, "the revoked token's session was deleted")
	res = revoked.signIn(operatorToken)
	assert.Equal(t, http.StatusUnauthorized, res.status, "a revoked token signs in no more")
}

// TestConsoleRetriesAParkedRun: the parked run shows with its Temporal UI
// link; decisions without the session's CSRF token or from another site
// are refused and change nothing; the retry button's POST sends the
// decision as the signed-in operator and the run leaves the list.
func TestConsoleRetriesAParkedRun(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	ctx := context.Background()
	f.knock.failFirst = 1
	f.seedOrder("o-console-park", "cus_console_park")
	ev := stripeEvent("evt_console_park", "payment_intent.succeeded", "o-console-park")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	parked := f.waitParked(func() bool { return false })
	require.Len(t, parked, 1)
	d := parked[0]

	b := newBrowser(f)
	p := b.console()
	row := p.row("data-dead-letter", fmt.Sprint(d.ID))
	require.NotNil(t, row, p.body)
	assert.Contains(t, text(row), "KnockAuthFailed")
	assert.Contains(t, text(row), "notify-confirmation")
	links := find(row, hasAttr("data-field", "temporal-link"))
	require.Len(t, links, 1)
	assert.Equal(t, temporalUI+"/namespaces/default/workflows/order-confirmation%2Fo-console-park/"+d.RunID+"/history",
		attr(links[0], "href"))
	csrf := p.csrf(t)
	retry := fmt.Sprintf("/console/dead-letters/%d/retry", d.ID)

	for name, try := range map[string]struct {
		form    url.Values
		headers map[string]string
	}{
		"no CSRF token":    {url.Values{}, nil},
		"wrong CSRF token": {url.Values{"csrf": {"forged"}}, nil},
		"cross-site":       {url.Values{"csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": ""}},
		"foreign origin":   {url.Values{"csrf": {csrf}}, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": ""}},
	} {
		res := b.post(retry, try.form, try.headers)
		assert.Equal(t, http.StatusForbidden, res.status, name)
	}
	got, err := f.store.GetDeadLetter(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, store.DeadLetterParked, got.Status, "no refused POST decided anything")

	res := b.post(fmt.Sprintf("/console/dead-letters/%d/explode", d.ID), url.Values{"csrf": {csrf}}, nil)
	assert.Equal(t, http.StatusNotFound, res.status)
	res = b.post("/console/dead-letters/999999/retry", url.Values{"csrf": {csrf}}, nil)
	assert.Equal(t, http.StatusNotFound, res.status)

	res = b.post(retry, url.Values{"csrf": {csrf}}, nil)
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	after := b.get(res.header.Get("Location"))
	assert.Equal(t, fmt.Sprintf("Dead letter %d: retry sent; the run goes on.", d.ID), text(after.byID("notice")))

	run := f.temporal.GetWorkflow(ctx, contract.OrderConfirmationID("o-console-park"), "")
	var out contract.OrderConfirmationResult
	require.NoError(t, run.Get(ctx, &out))
	assert.Equal(t, "confirmed", out.State)
	require.Eventually(t, func() bool {
		return b.get("/console/").row("data-dead-letter", fmt.Sprint(d.ID)) == nil
	}, 30*time.Second, 100*time.Millisecond, "the run left the parked list")
	got, err = f.store.GetDeadLetter(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, operatorName, got.DecidedBy, "the operator is the session's")
	var audited int
	require.NoError(t, f.store.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_log
WHERE action = 'dead_letter.retry' AND actor = $1 AND subject = $2 AND details->>'outcome' = 'ok'`,
		operatorName, fmt.Sprintf("dead-letter/%d", d.ID)).Scan(&audited))
	assert.Equal(t, 1, audited)

	res = b.post(retry, url.Values{"csrf": {csrf}}, nil)
	assert.Equal(t, http.StatusConflict, res.status, "a decided dead letter is not decided again")
	assert.Contains(t, text(res.byID("message")), "no longer parked")
}

// TestConsoleInboxReplay: the inbox section counts the rows by status and
// lists the newest with a replay button, which replays through the inbox
// as the signed-in operator.
func TestConsoleInboxReplay(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ctx := context.Background()
	f.postPayment("evt_console_inbox", "o-console-inbox")
	id := f.waitInboxStatus("stripe", "evt_console_inbox", inbox.StatusUnroutable)

	b := newBrowser(f)
	p := b.console()
	assert.Equal(t, "0", text(p.byID("inbox-pending")))
	assert.Equal(t, "unroutable: 1", text(p.row("data-status", inbox.StatusUnroutable)))
	row := p.row("data-inbox-event", fmt.Sprint(id))
	require.NotNil(t, row, p.body)
	assert.Contains(t, field(row, "status"), "unroutable")
	forms := find(row, hasAttr("action", fmt.Sprintf("/console/inbox/%d/replay", id)))
	require.Len(t, forms, 1, "a replay button")

	res := b.post(fmt.Sprintf("/console/inbox/%d/replay", id), url.Values{"csrf": {"forged"}}, nil)
	assert.Equal(t, http.StatusForbidden, res.status)
	_, _, replayedBy := f.inboxRow("stripe", "evt_console_inbox")
	assert.Empty(t, replayedBy, "a refused replay changes nothing")
	res = b.post("/console/inbox/999999/replay", url.Values{"csrf": {p.csrf(t)}}, nil)
	assert.Equal(t, http.StatusNotFound, res.status)

	res = b.post(fmt.Sprintf("/console/inbox/%d/replay", id), url.Values{"csrf": {p.csrf(t)}}, nil)
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	assert.Equal(t, fmt.Sprintf("Inbox event %d is pending again; the dispatcher hands it off.", id),
		text(b.get(res.header.Get("Location")).byID("notice")))
	_, _, replayedBy = f.inboxRow("stripe", "evt_console_inbox")
	assert.Equal(t, operatorName, replayedBy)
	var audited int
	require.NoError(t, f.store.Pool().QueryRow(ctx,
		`SELECT count(*) FROM audit_log WHERE action = 'inbox.replay' AND actor = $1`, operatorName).Scan(&audited))
	assert.Equal(t, 1, audited)
	// Still no order: the dispatcher finds it unroutable again.
	f.waitInboxStatus("stripe", "evt_console_inbox", inbox.StatusUnroutable)
}

// TestConsoleShowsCircuitPausedAfterBreakerTrips: Knock is down; the
// worker's breaker pauses the Knock queue after two outage failures; once
// the worker published its queues and calls, the console shows the
// circuit paused, the failed requests, the last error and red bars.
func TestConsoleShowsCircuitPausedAfterBreakerTrips(t *testing.T) {
	calls := callstats.NewRecorder()
	f := newFixture(t, fixtureOptions{worker: true, knockDown: true, calls: calls,
		breaker: worker.BreakerOptions{Threshold: 2, Cooldown: time.Hour}})
	ctx := context.Background()
	b := newBrowser(f)
	p := b.console()
	knockRow := p.row("data-provider", "knock")
	require.NotNil(t, knockRow)
	assert.Equal(t, "–", field(knockRow, "circuit"), "no worker reported its queues yet")
	assert.Equal(t, "live", field(knockRow, "mode"))
	assert.Equal(t, "console", field(p.row("data-provider", "simplelogin"), "mode"))

	f.seedOrder("o-console-breaker", "cus_console_breaker")
	ev := stripeEvent("evt_console_breaker", "payment_intent.succeeded", "o-console-breaker")
	status, _ := f.postStripe(ev, sign(ev, stripeSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool {
		for _, q := range f.workers.Queues() {
			if q.Provider == contract.ProviderKnock {
				return q.Paused
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "the Knock queue pauses")

	pub := callstats.NewPublisher(f.store.Pool(), calls, callstats.PublisherOptions{Queues: f.workers.CallStatsQueues})
	require.NoError(t, pub.Flush(ctx))
	p = b.get("/console/")
	knockRow = p.row("data-provider", "knock")
	circuit := find(knockRow, hasAttr("data-field", "circuit"))[0]
	assert.Equal(t, "circuit-paused", attr(circuit, "class"))
	assert.Contains(t, text(circuit), "paused since")
	assert.Contains(t, text(circuit), "1 of 1 workers")
	assert.Regexp(t, `^[2-9]\d* / 100\.0% / \d+ ms$`, field(knockRow, "recent"), "every request failed")
	assert.Contains(t, field(knockRow, "last-error"), "HTTP 503")
	assert.NotEmpty(t, find(knockRow, hasAttr("class", "err")), "a red bar in the sparkline")
	assert.Equal(t, "closed", field(p.row("data-provider", "stripe"), "circuit"))
}

// TestConsoleSubmitsARotationKey: the rotation waiting for a key shows the
// form; a malformed key and a forged form are refused; the right one is
// taken; no answer ever repeats the key.
func TestConsoleSubmitsARotationKey(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	ctx := context.Background()
	const newSecret = "whsec_good_console_secret_0123456"
	status, body := f.api(http.MethodPost, "/v1/key-rotations/stripe_webhook", operatorToken, nil)
	require.Equal(t, http.StatusAccepted, status, body)

	b := newBrowser(f)
	b.console()
	var p page
	require.Eventually(t, func() bool {
		p = b.get("/console/")
		row := p.row("data-rotation", "stripe_webhook")
		return row != nil && strings.HasPrefix(field(row, "state"), "awaiting-key")
	}, 20*time.Second, 100*time.Millisecond, "the rotation waits for a key")
	row := p.row("data-rotation", "stripe_webhook")
	require.Len(t, find(row, hasAttr("name", "key")), 1, "the key form")
	assert.Equal(t, "password", attr(find(row, hasAttr("name", "key"))[0], "type"))
	submit := "/console/rotations/stripe_webhook/key"

	res := b.post(submit, url.Values{"csrf": {"forged"}, "key": {newSecret}}, nil)
	assert.Equal(t, http.StatusForbidden, res.status)
	res = b.post(submit, url.Values{"csrf": {p.csrf(t)}, "key": {"not-a-webhook-secret-at-all"}}, nil)
	assert.Equal(t, http.StatusUnprocessableEntity, res.status)
	assert.NotContains(t, res.body, "not-a-webhook-secret-at-all")
	versions, err := f.creds.Versions(ctx, "stripe_webhook", "api_key")
	require.NoError(t, err)
	assert.Len(t, versions, 1, "refused keys are not stored")

	res = b.post(submit, url.Values{"csrf": {p.csrf(t)}, "key": {newSecret}}, nil)
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	after := b.get(res.header.Get("Location"))
	assert.Equal(t, "The stripe_webhook rotation accepted the key.", text(after.byID("notice")))
	assert.NotContains(t, after.body, newSecret)
	assert.NotContains(t, res.body, newSecret)
	versions, err = f.creds.Versions(ctx, "stripe_webhook", "api_key")
	require.NoError(t, err)
	assert.Len(t, versions, 2, "the key was stored as a new version")
	var leaked int
	require.NoError(t, f.store.Pool().QueryRow(ctx,
		`SELECT count(*) FROM audit_log WHERE details::text LIKE '%' || $1 || '%'`, newSecret).Scan(&leaked))
	assert.Zero(t, leaked, "the audit log never holds the key")
	var submitted int
	require.NoError(t, f.store.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_log
WHERE action = 'key_rotation.submit_key' AND actor = $1 AND details->>'outcome' = 'ok'`, operatorName).Scan(&submitted))
	assert.Equal(t, 1, submitted)
}
