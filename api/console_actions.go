package api

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/callstats"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/starter"
)

// The console's actions. Each goes through the path the API's operator
// routes use (the same decision, replay and key submission, audited the
// same way), as the session's operator, and answers a redirect to the
// console with a fixed notice, or a page saying why it failed.

// done redirects to the console with the notice for action and subject.
func done(w http.ResponseWriter, r *http.Request, action, subject string) {
	http.Redirect(w, r, consolePath+"?done="+action+"&id="+subject, http.StatusSeeOther)
}

// decide: POST /console/dead-letters/{id}/{action}.
func (c *console) decide(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r.Context())
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(w, r, s, http.StatusBadRequest, "A dead letter's id is a positive integer.")
		return
	}
	action := r.PathValue("action")
	switch action {
	case contract.DecisionRetry, contract.DecisionSkip, contract.DecisionAbort:
	default:
		c.fail(w, r, s, http.StatusNotFound, "A dead letter is retried, skipped or aborted.")
		return
	}
	_, _, err = c.a.decide(r.Context(), s.Operator, id, action)
	var notParked *notParkedError
	switch {
	case err == nil:
		done(w, r, action, strconv.FormatInt(id, 10))
	case errors.As(err, &notParked):
		c.fail(w, r, s, http.StatusConflict, "Dead letter "+strconv.FormatInt(id, 10)+" is no longer parked (it is "+notParked.status+"); someone decided it already.")
	case errors.Is(err, store.ErrNotFound):
		c.fail(w, r, s, http.StatusNotFound, "No dead letter "+strconv.FormatInt(id, 10)+".")
	case errors.Is(err, starter.ErrRejected), errors.Is(err, starter.ErrNotFound):
		c.fail(w, r, s, http.StatusConflict, "The run did not take the decision: "+err.Error())
	default:
		c.unavailable(w, r, err)
	}
}

// replay: POST /console/inbox/{id}/replay.
func (c *console) replay(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r.Context())
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(w, r, s, http.StatusBadRequest, "An inbox event's id is a positive integer.")
		return
	}
	res, err := c.a.deps.Inbox.Replay(r.Context(), id, s.Operator)
	if !errors.Is(err, inbox.ErrNotFound) {
		c.a.audit(r.Context(), ReplayAudit(s.Operator, id, res, err))
	}
	switch {
	case err == nil:
		if c.a.deps.Poke != nil {
			c.a.deps.Poke()
		}
		done(w, r, "replay", strconv.FormatInt(id, 10))
	case errors.Is(err, inbox.ErrNotFound):
		c.fail(w, r, s, http.StatusNotFound, "No inbox event "+strconv.FormatInt(id, 10)+".")
	case errors.Is(err, inbox.ErrAlreadyPending), errors.Is(err, inbox.ErrNotRoutable), errors.Is(err, inbox.ErrPurged):
		c.fail(w, r, s, http.StatusConflict, "Not replayed: "+err.Error()+".")
	default:
		c.unavailable(w, r, err)
	}
}

// submitKey: POST /console/rotations/{provider}/key with the field key.
// The key goes to the rotation's SubmitKey (stored encrypted, its version
// handed to the rotation); it is never echoed, logged or kept in a form.
func (c *console) submitKey(w http.ResponseWriter, r *http.Request) {
	s := sessionOf(r.Context())
	provider := r.PathValue("provider")
	if c.a.deps.Rotations == nil {
		c.fail(w, r, s, http.StatusNotFound, "Key rotations are not served here.")
		return
	}
	res, err := c.a.deps.Rotations.SubmitKey(r.Context(), s.Operator, provider, r.PostFormValue("key"))
	switch {
	case err == nil && res.Valid:
		done(w, r, "key-accepted", provider)
	case err == nil:
		c.fail(w, r, s, http.StatusUnprocessableEntity, "The rotation refused the key: "+res.Reason+". Nothing changed; submit another.")
	case errors.Is(err, ErrBadKey):
		c.fail(w, r, s, http.StatusUnprocessableEntity, "Not submitted: "+err.Error()+".")
	case errors.Is(err, starter.ErrInvalid), errors.Is(err, starter.ErrRejected), errors.Is(err, starter.ErrNotFound):
		c.fail(w, r, s, http.StatusConflict, "Not submitted: "+err.Error()+".")
	default:
		c.unavailable(w, r, err)
	}
}

// Sparkline geometry: one bar an hour, requests in grey with the failed
// share in red on top.
const (
	sparkBarWidth = 4
	sparkGap      = 1
	sparkHeight   = 24
)

// sparkline draws slots as an inline SVG bar chart. Only numbers the
// server computed go into the markup, so it is safe as template.HTML.
func sparkline(title string, slots [callstats.Slots]callstats.Slot) template.HTML {
	var peak, requests, errs int64
	for _, s := range slots {
		peak = max(peak, s.Requests)
		requests += s.Requests
		errs += s.Errors
	}
	width := len(slots) * (sparkBarWidth + sparkGap)
	var b strings.Builder
	label := fmt.Sprintf("%s, last 24 hours: %d requests, %d failed", template.HTMLEscapeString(title), requests, errs)
	fmt.Fprintf(&b, `<svg class="spark" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg"><title>%s</title>`,
		label, width, sparkHeight, width, sparkHeight, label)
	fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="%d" y2="%d" stroke="#ccc" stroke-width="1"/>`, sparkHeight, width, sparkHeight)
	for i, s := range slots {
		if s.Requests == 0 {
			continue
		}
		x := i * (sparkBarWidth + sparkGap)
		h := max(1, int(float64(sparkHeight)*float64(s.Requests)/float64(peak)))
		fmt.Fprintf(&b, `<rect class="req" x="%d" y="%d" width="%d" height="%d" fill="#8a94a6"/>`, x, sparkHeight-h, sparkBarWidth, h)
		if s.Errors > 0 {
			eh := max(1, int(float64(h)*float64(s.Errors)/float64(s.Requests)))
			fmt.Fprintf(&b, `<rect class="err" x="%d" y="%d" width="%d" height="%d" fill="#c0392b"/>`, x, sparkHeight-eh, sparkBarWidth, eh)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // numbers and an escaped title only
}
