package api

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/callstats"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// consolePage is what console.html shows. Each section carries its own
// error, so one unreadable source leaves the others readable.
type consolePage struct {
	Operator     string
	CSRF         string
	Now          time.Time
	Notice       string
	Integrations []integrationRow
	CallsError   string
	Inbox        inboxSection
	Parked       parkedSection
	Rotations    []rotationRow
}

// integrationRow is one line of the Integrations section.
type integrationRow struct {
	Name  string
	Title string
	// Mode is live, console (calls recorded, not sent), or "" where it
	// means nothing (PostgreSQL, Temporal).
	Mode string
	// Circuit is the breaker's state over the live workers: closed,
	// paused, or "" (no queue, or no worker reporting it).
	Circuit        string
	PausedSince    *time.Time
	PausedWorkers  string
	Pauses         int
	Recent, Day    callstats.Window
	LastErrorClass string
	LastErrorAt    *time.Time
	// KeyVersion is the active key's version, 0 when there is none.
	KeyVersion   int
	KeyAge       string
	NextRotation *time.Time
	Sparkline    template.HTML
}

// inboxSection is the Inbox section.
type inboxSection struct {
	Error   string
	Pending int64
	Lag     time.Duration
	Counts  []statusCount
	Events  []InboxEvent
}

// statusCount is the number of inbox rows of one status.
type statusCount struct {
	Status string
	Rows   int64
}

// parkedSection is the Parked runs section.
type parkedSection struct {
	Error string
	Runs  []parkedRun
}

// parkedRun is an open dead letter with its Temporal UI link.
type parkedRun struct {
	store.DeadLetter
	// Link is the run in the Temporal UI, "" without a configured UI.
	Link string
}

// rotationRow is one rotated key of the Rotations section.
type rotationRow struct {
	Name, Title string
	KeyVersion  int
	KeyAge      string
	// State and Step are the rotation's, "" when none ran.
	State, Step string
	// AcceptsKey is true while a manual rotation waits for an operator's
	// key: the page shows the form.
	AcceptsKey bool
	Error      string
}

// integrations are the console's rows, in order: the providers crmflow
// calls, Clerk (which calls crmflow), PostgreSQL and Temporal.
var integrations = []struct{ name, title, key string }{
	{contract.ProviderStripe, "Stripe", contract.ProviderStripe},
	{contract.ProviderKnock, "Knock", contract.ProviderKnock},
	{contract.ProviderSimpleLogin, "SimpleLogin", contract.ProviderSimpleLogin},
	{contract.ProviderResend, "Resend", contract.ProviderResend},
	{callstats.Clerk, "Clerk (webhooks)", contract.KeyRotationClerkWebhook},
	{callstats.Postgres, "PostgreSQL", ""},
	{callstats.Temporal, "Temporal", ""},
}

// notices are the messages a redirect after an action may ask for: a
// fixed set, so no link can make the page say anything else.
var notices = map[string]string{
	"retry":        "Dead letter %s: retry sent; the run goes on.",
	"skip":         "Dead letter %s: skip sent; the run goes on without the step.",
	"abort":        "Dead letter %s: abort sent; the run ends.",
	"replay":       "Inbox event %s is pending again; the dispatcher hands it off.",
	"key-accepted": "The %s rotation accepted the key.",
}

// pageData gathers every section. Sources are read one after another:
// the page is for people, and a slow source shows as a slow page, not as
// a pile of concurrent queries.
func (c *console) pageData(r *http.Request, s *session) consolePage {
	ctx := r.Context()
	now := time.Now()
	p := consolePage{Operator: s.Operator, CSRF: s.CSRF, Now: now}
	if f, ok := notices[r.URL.Query().Get("done")]; ok {
		subject := r.URL.Query().Get("id")
		if _, err := strconv.ParseInt(subject, 10, 64); err != nil {
			if _, known := providers.Lookup(subject); !known {
				subject = "?"
			}
		}
		p.Notice = fmt.Sprintf(f, subject)
	}
	p.Integrations, p.CallsError = c.integrations(ctx, now)
	p.Inbox = c.inbox(ctx)
	p.Parked = c.parked(ctx)
	p.Rotations = c.rotations(ctx, now)
	return p
}

// integrations reads the Integrations section.
func (c *console) integrations(ctx context.Context, now time.Time) ([]integrationRow, string) {
	sums, err := c.deps.Calls(ctx, now)
	var callsErr string
	if err != nil {
		c.a.deps.Logger.Error("Console could not read call statistics", "error", err)
		callsErr = "Call statistics unavailable: the database did not answer."
	}
	rows := make([]integrationRow, 0, len(integrations))
	for _, in := range integrations {
		row := integrationRow{Name: in.name, Title: in.title}
		p, isProvider := providers.Lookup(in.name)
		switch {
		case isProvider && slices.Contains(c.deps.ConsoleProviders, in.name):
			row.Mode = "console"
		case isProvider || in.name == callstats.Clerk:
			row.Mode = "live"
		}
		sum := sums[in.name]
		if sum == nil {
			sum = &callstats.Summary{}
		}
		row.Recent, row.Day, row.LastErrorClass = sum.Recent, sum.Day, sum.LastErrorClass
		if !sum.LastErrorAt.IsZero() {
			at := sum.LastErrorAt
			row.LastErrorAt = &at
		}
		if isProvider && p.Queue && sum.Circuit != nil {
			row.Circuit, row.Pauses = "closed", sum.Circuit.Pauses
			if sum.Circuit.Paused > 0 {
				row.Circuit, row.PausedSince = "paused", sum.Circuit.PausedSince
				row.PausedWorkers = fmt.Sprintf("%d of %d workers", sum.Circuit.Paused, sum.Circuit.Replicas)
			}
		}
		if in.key != "" {
			if kp, ok := providers.Lookup(in.key); ok {
				row.KeyVersion, row.KeyAge = c.activeKey(ctx, kp, now)
				if kp.Rotated() && c.a.deps.Starter != nil {
					next, err := c.a.deps.Starter.NextRotation(ctx, kp.Name)
					if err != nil {
						c.a.deps.Logger.Warn("Console could not read a rotation schedule", "provider", kp.Name, "error", err)
					}
					row.NextRotation = next
				}
			}
		}
		row.Sparkline = sparkline(in.title, sum.Slots)
		rows = append(rows, row)
	}
	return rows, callsErr
}

// activeKey is the version and age of p's active key; 0 and "" when there
// is none or the store cannot be read.
func (c *console) activeKey(ctx context.Context, p providers.Provider, now time.Time) (int, string) {
	versions, err := c.deps.Keys.Versions(ctx, p.Key.Provider, p.Key.Name)
	if err != nil {
		c.a.deps.Logger.Warn("Console could not read key versions", "provider", p.Name, "error", err)
		return 0, ""
	}
	for _, v := range slices.Backward(versions) {
		if v.Status != "active" {
			continue
		}
		since := v.CreatedAt
		if v.ActivatedAt != nil {
			since = *v.ActivatedAt
		}
		return v.Version, age(now.Sub(since))
	}
	return 0, ""
}

// inbox reads the Inbox section.
func (c *console) inbox(ctx context.Context) inboxSection {
	var sec inboxSection
	b, err := c.deps.InboxStats.Backlog(ctx)
	if err == nil {
		sec.Pending, sec.Lag = b.Pending, b.OldestAge
		var counts []inbox.Count
		if counts, err = c.deps.InboxStats.Counts(ctx); err == nil {
			byStatus := map[string]int64{}
			for _, n := range counts {
				byStatus[n.Status] += n.Rows
			}
			for _, st := range inbox.Statuses {
				sec.Counts = append(sec.Counts, statusCount{Status: st, Rows: byStatus[st]})
			}
		}
	}
	if err == nil {
		var list []inbox.Record
		if list, err = c.a.deps.Inbox.List(ctx, inbox.ListFilter{Limit: 20}); err == nil {
			for _, rec := range list {
				sec.Events = append(sec.Events, NewInboxEvent(rec, false))
			}
		}
	}
	if err != nil {
		c.a.deps.Logger.Error("Console could not read the inbox", "error", err)
		sec.Error = "The inbox could not be read: the database did not answer."
	}
	return sec
}

// parked reads the Parked runs section.
func (c *console) parked(ctx context.Context) parkedSection {
	var sec parkedSection
	list, err := c.a.deps.Store.ListDeadLetters(ctx, store.DeadLetterParked, 200)
	if err != nil {
		c.a.deps.Logger.Error("Console could not read the dead letters", "error", err)
		sec.Error = "The dead letters could not be read: the database did not answer."
		return sec
	}
	for _, d := range list {
		sec.Runs = append(sec.Runs, parkedRun{DeadLetter: d, Link: c.runLink(d.WorkflowID, d.RunID)})
	}
	return sec
}

// runLink is the run's page in the Temporal UI, "" without a UI URL.
func (c *console) runLink(workflowID, runID string) string {
	base := strings.TrimRight(c.deps.TemporalUIURL, "/")
	if base == "" {
		return ""
	}
	ns := c.deps.Namespace
	if ns == "" {
		ns = "default"
	}
	return base + "/namespaces/" + url.PathEscape(ns) + "/workflows/" + url.PathEscape(workflowID) + "/" +
		url.PathEscape(runID) + "/history"
}

// rotations reads the Rotations section.
func (c *console) rotations(ctx context.Context, now time.Time) []rotationRow {
	var rows []rotationRow
	for _, p := range providers.All() {
		if !p.Rotated() {
			continue
		}
		row := rotationRow{Name: p.Name, Title: p.Title}
		row.KeyVersion, row.KeyAge = c.activeKey(ctx, p, now)
		st, err := c.a.deps.Starter.Status(ctx, contract.KeyRotationID(p.Name))
		switch {
		case errors.Is(err, starter.ErrNotFound):
		case err != nil:
			c.a.deps.Logger.Warn("Console could not query a rotation", "provider", p.Name, "error", err)
			row.Error = "state unavailable"
		default:
			row.State, row.Step = st.State, st.Step
			row.AcceptsKey = p.Rotation == providers.RotationManual && st.State == "awaiting-key"
		}
		rows = append(rows, row)
	}
	return rows
}

// age writes a duration the way people say it: 3d 4h, 5h 12m, 40s.
func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
}

// consoleFuncs are the templates' helpers.
var consoleFuncs = template.FuncMap{
	"age": func(now time.Time, t any) string {
		switch v := t.(type) {
		case time.Time:
			return age(now.Sub(v))
		case *time.Time:
			if v == nil {
				return ""
			}
			return age(now.Sub(*v))
		}
		return ""
	},
	"stamp": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		}
		return ""
	},
	"percent": func(w callstats.Window) string {
		if w.Requests == 0 {
			return "–"
		}
		return strconv.FormatFloat(100*w.ErrorRate(), 'f', 1, 64) + "%"
	},
	"ms": func(d time.Duration) string {
		if d == 0 {
			return "–"
		}
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 0, 64) + " ms"
	},
	"replayable": func(e InboxEvent) bool {
		return e.Status != inbox.StatusPending && e.PurgedAt == nil
	},
	"duration": func(d time.Duration) string { return age(d) },
	"list":     func(s ...string) []string { return s },
}
