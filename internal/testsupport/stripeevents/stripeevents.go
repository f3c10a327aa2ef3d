// Package stripeevents is a test server standing in for Stripe's events
// API, GET /v1/events, with Stripe's list semantics over events kept in
// memory: newest first, limit (1 to 100, 10 by default), starting_after and
// ending_before cursors with has_more, created as an exact second or a
// range (gt, gte, lt, lte), type (with a * wildcard) or types[], and only
// the last 30 days listed. Every request is checked against Stripe's
// OpenAPI spec, the file the tests' stripe-mock validates with, and a
// request that does not match fails the test.
//
// stripe-mock checks requests too, but keeps no state: it answers every
// list with the same fixture, so pagination, filters and the events a test
// needs can only be tried here.
//
// It is test support: it imports only other test support.
package stripeevents

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmflow/crmflow/internal/testsupport/openapicheck"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// Horizon is how far back Stripe lists events.
const Horizon = 30 * 24 * time.Hour

// Server is the events API. Its methods are safe for concurrent use.
type Server struct {
	// URL is the server's base URL, for stripe.api_url.
	URL string

	mu       sync.Mutex
	now      func() time.Time
	events   []event // in the order they were added
	requests []Request
	failures []int // statuses to answer the next list requests with
}

// event is one stored event: its raw JSON and what the filters read.
type event struct {
	id      string
	typ     string
	created int64
	seq     int
	raw     json.RawMessage
}

// Request is one list request as the server understood it.
type Request struct {
	Types         []string
	Type          string
	Created       map[string]int64 // "gte", "lt", ... and "eq" for created=N
	Limit         int
	StartingAfter string
	EndingBefore  string
	// Status is what the server answered.
	Status int
}

// New starts the server; it stops with the test. now is the server's clock
// for the 30-day horizon (nil: time.Now).
func New(t testing.TB, now func() time.Time) *Server {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	s := &Server{now: now}
	spec := openapicheck.LoadFile(t, openapicheck.Stripe, testenv.StripeSpecPath(t))
	srv := httptest.NewServer(spec.Middleware(t, false, http.HandlerFunc(s.serve)))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Add stores events, each the JSON object Stripe would return; it reads
// their id, type and created.
func (s *Server) Add(t testing.TB, raws ...[]byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, raw := range raws {
		var head struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Type    string `json:"type"`
			Created int64  `json:"created"`
		}
		if err := json.Unmarshal(raw, &head); err != nil || head.ID == "" || head.Object != "event" || head.Created == 0 {
			t.Fatalf("stripeevents: not an event with an id and a created time (%v): %s", err, raw)
		}
		s.events = append(s.events, event{id: head.ID, typ: head.Type, created: head.Created, seq: len(s.events), raw: raw})
	}
}

// FailNext makes the next list requests answer status each (e.g. 429 rate
// limiting, 500), with Stripe's error body; a 0 answers that request as
// usual, so FailNext(0, 429) fails the second page.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, statuses...)
}

// Requests returns the list requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// stripeKey is what Stripe's keys look like; stripe-mock accepts any.
var stripeKey = regexp.MustCompile(`^(sk|rk)_(test|live)_[0-9A-Za-z]+$`)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/v1/events" {
		writeError(w, http.StatusNotFound, "invalid_request_error", "", "Unrecognized request URL ("+r.Method+": "+r.URL.Path+").")
		return
	}
	if key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); !ok || !stripeKey.MatchString(key) {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "", "Invalid API Key provided.")
		return
	}
	req, refusal := parse(r.URL.Query())
	s.mu.Lock()
	defer s.mu.Unlock()
	record := func(status int) { req.Status = status; s.requests = append(s.requests, req) }
	if refusal != "" {
		record(http.StatusBadRequest)
		writeError(w, http.StatusBadRequest, "invalid_request_error", "parameter_invalid", refusal)
		return
	}
	status := 0
	if len(s.failures) > 0 {
		status, s.failures = s.failures[0], s.failures[1:]
	}
	if status != 0 {
		record(status)
		typ, code := "api_error", ""
		if status == http.StatusTooManyRequests {
			typ, code = "invalid_request_error", "rate_limit"
		}
		writeError(w, status, typ, code, fmt.Sprintf("test server answers %d", status))
		return
	}
	data, hasMore, missing := s.list(req)
	if missing != "" {
		record(http.StatusBadRequest)
		writeError(w, http.StatusBadRequest, "invalid_request_error", "resource_missing", "No such event: '"+missing+"'")
		return
	}
	record(http.StatusOK)
	body, _ := json.Marshal(struct {
		Object  string            `json:"object"`
		Data    []json.RawMessage `json:"data"`
		HasMore bool              `json:"has_more"`
		URL     string            `json:"url"`
	}{"list", data, hasMore, "/v1/events"})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", fmt.Sprintf("req_test_%d", len(s.requests)))
	_, _ = w.Write(body)
}

// list applies the request to the stored events, as Stripe does: the
// listable events newest first, the cursor's neighbours, one page. missing
// names a cursor that is no event.
func (s *Server) list(req Request) (data []json.RawMessage, hasMore bool, missing string) {
	all := append([]event(nil), s.events...)
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].created != all[j].created {
			return all[i].created > all[j].created
		}
		return all[i].seq > all[j].seq
	})
	horizon := s.now().Add(-Horizon).Unix()
	// The cursor's place in the whole list, whether or not it matches the
	// filters: Stripe pages by position.
	from, to := 0, len(all)
	for _, cursor := range []struct {
		id    string
		after bool
	}{{req.StartingAfter, true}, {req.EndingBefore, false}} {
		if cursor.id == "" {
			continue
		}
		i := indexOf(all, cursor.id)
		if i < 0 {
			return nil, false, cursor.id
		}
		if cursor.after {
			from = i + 1
		} else {
			to = i
		}
	}
	var matched []event
	for _, ev := range all[from:to] {
		if ev.created >= horizon && req.matches(ev) {
			matched = append(matched, ev)
		}
	}
	page := matched
	if len(page) > req.Limit {
		hasMore = true
		if req.EndingBefore != "" && req.StartingAfter == "" {
			// The page just before the cursor: the newest events after
			// which the cursor comes.
			page = page[len(page)-req.Limit:]
		} else {
			page = page[:req.Limit]
		}
	}
	for _, ev := range page {
		data = append(data, ev.raw)
	}
	return data, hasMore, ""
}

func indexOf(events []event, id string) int {
	for i, ev := range events {
		if ev.id == id {
			return i
		}
	}
	return -1
}

// matches applies the type and created filters.
func (req Request) matches(ev event) bool {
	if len(req.Types) > 0 && !contains(req.Types, ev.typ) {
		return false
	}
	if req.Type != "" {
		if prefix, wild := strings.CutSuffix(req.Type, "*"); wild {
			if !strings.HasPrefix(ev.typ, prefix) {
				return false
			}
		} else if ev.typ != req.Type {
			return false
		}
	}
	for op, v := range req.Created {
		ok := map[string]bool{"eq": ev.created == v, "gt": ev.created > v, "gte": ev.created >= v,
			"lt": ev.created < v, "lte": ev.created <= v}[op]
		if !ok {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// indexedKey matches a form key with a bracketed part: types[0], types[],
// created[gte].
var indexedKey = regexp.MustCompile(`^([a-z_]+)\[([a-z0-9_]*)\]$`)

// parse reads a list request's query the way Stripe does: arrays as
// name[] or name[i], hashes as name[key]. refusal is Stripe's message for a
// request it refuses.
func parse(q url.Values) (req Request, refusal string) {
	req = Request{Limit: 10, Created: map[string]int64{}}
	for key, vals := range q {
		name, sub := key, ""
		if m := indexedKey.FindStringSubmatch(key); m != nil {
			name, sub = m[1], m[2]
		}
		val := vals[len(vals)-1]
		switch {
		case name == "types" && key != name:
			req.Types = append(req.Types, vals...)
		case key == "type":
			req.Type = val
		case name == "created":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return req, "Invalid integer: " + val
			}
			op := sub
			if key == name {
				op = "eq"
			}
			if !contains([]string{"eq", "gt", "gte", "lt", "lte"}, op) {
				return req, "Received unknown parameter: " + key
			}
			req.Created[op] = n
		case key == "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > 100 {
				return req, "Invalid limit: must be between 1 and 100"
			}
			req.Limit = n
		case key == "starting_after":
			req.StartingAfter = val
		case key == "ending_before":
			req.EndingBefore = val
		case key == "delivery_success" || name == "expand":
			// Accepted and, for these tests, not applied.
		default:
			return req, "Received unknown parameter: " + key
		}
	}
	if req.Type != "" && len(req.Types) > 0 {
		return req, "You may pass either `type` or `types`, but not both."
	}
	if len(req.Types) > 20 {
		return req, "types: at most 20 event types"
	}
	sort.Strings(req.Types)
	return req, ""
}

// writeError answers Stripe's error shape.
func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"type": typ, "code": code, "message": msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
