package reliability

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

const (
	knockKey     = "sk_test_reliability_knock"
	stripeKey    = "sk_test_reliability"
	stripeSecret = "whsec_reliability_stripe_secret"
	apiToken     = "reliability-api-token"

	// orderAmount and orderCurrency are what every test order costs; the
	// Stripe peer reports PaymentIntents with exactly these.
	orderAmount   = 4200
	orderCurrency = "eur"
)

// knockEffect is one side effect at Knock: a workflow run it queued.
type knockEffect struct {
	Workflow       string
	IdempotencyKey string
	Recipients     []any
	Data           map[string]any
	RunID          string
	// Requests counts the triggers that carried this idempotency key: the
	// first made the effect, the others were answered with its response.
	Requests int
}

// knockPeer behaves like Knock's trigger endpoint where exactly-once is
// concerned: it checks method, path, bearer key and body as the real API
// does, and a request whose Idempotency-Key it has seen is answered with the
// first response and queues nothing new (Knock keeps keys for 24 hours).
type knockPeer struct {
	srv *httptest.Server

	mu       sync.Mutex
	effects  map[string]*knockEffect
	requests int
	// arrivals is when each trigger request arrived, in order, so a test
	// can measure the rate Knock was called at.
	arrivals []time.Time
	// delay is added before every answer, so a kill lands mid-activity.
	delay time.Duration
	// holdWorkflow, when set, makes the first trigger of that Knock workflow
	// take effect and then hold its answer until the caller hangs up (its
	// process was killed) or release is closed.
	holdWorkflow string
	held         chan struct{}
	release      chan struct{}
}

func newKnockPeer(t *testing.T) *knockPeer {
	t.Helper()
	p := &knockPeer{effects: map[string]*knockEffect{}, held: make(chan struct{}), release: make(chan struct{})}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.releaseHeld()
		p.srv.Close()
	})
	return p
}

// holdFirst makes the first trigger of workflow hang after taking effect.
func (p *knockPeer) holdFirst(workflow string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdWorkflow = workflow
}

// setDelay slows every answer down by d.
func (p *knockPeer) setDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

func (p *knockPeer) releaseHeld() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.release:
	default:
		close(p.release)
	}
}

func (p *knockPeer) serve(w http.ResponseWriter, r *http.Request) {
	wf, ok := strings.CutPrefix(r.URL.Path, "/v1/workflows/")
	wf, isTrigger := strings.CutSuffix(wf, "/trigger")
	if r.Method != http.MethodPost || !ok || !isTrigger || wf == "" {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"code":"not_found","message":"not found","status":404,"type":"invalid_request_error"}`)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+knockKey {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"api_key_missing","message":"invalid key","status":401,"type":"authentication_error"}`)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		w.WriteHeader(http.StatusUnsupportedMediaType)
		fmt.Fprint(w, `{"code":"invalid_content_type","message":"JSON only","status":415,"type":"invalid_request_error"}`)
		return
	}
	var body struct {
		Recipients []any          `json:"recipients"`
		Data       map[string]any `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Recipients == nil {
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprint(w, `{"code":"invalid_params","message":"recipients is required","status":422,"type":"invalid_request_error"}`)
		return
	}
	key := r.Header.Get("Idempotency-Key")

	p.mu.Lock()
	p.requests++
	p.arrivals = append(p.arrivals, time.Now())
	if key == "" {
		// Without a key every trigger is a new run; crmflow never sends one
		// like that, and the exactly-once check would see the extra effect.
		key = fmt.Sprintf("no-key-%d", p.requests)
	}
	eff, seen := p.effects[key]
	if !seen {
		eff = &knockEffect{Workflow: wf, IdempotencyKey: key, Recipients: body.Recipients, Data: body.Data,
			RunID: fmt.Sprintf("run-%d", len(p.effects)+1)}
		p.effects[key] = eff
	}
	eff.Requests++
	runID := eff.RunID
	hold := !seen && p.holdWorkflow != "" && wf == p.holdWorkflow
	if hold {
		p.holdWorkflow = ""
		close(p.held)
	}
	delay := p.delay
	p.mu.Unlock()

	if hold {
		// The run is queued at Knock, but the caller never hears so.
		select {
		case <-r.Context().Done():
		case <-p.release:
		}
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"workflow_run_id":%q}`, runID)
}

// effectsByKey returns a copy of every effect, by idempotency key.
func (p *knockPeer) effectsByKey() map[string]knockEffect {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]knockEffect, len(p.effects))
	for k, e := range p.effects {
		out[k] = *e
	}
	return out
}

// arrivalTimes returns when each trigger request arrived, in order.
func (p *knockPeer) arrivalTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.arrivals...)
}

// requestsFor counts the triggers that carried key.
func (p *knockPeer) requestsFor(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.effects[key]; ok {
		return e.Requests
	}
	return 0
}

// stripePeer is stripe-mock (which checks every request against Stripe's
// OpenAPI spec) behind a recording proxy. stripe-mock's PaymentIntents carry
// random amounts, so the proxy reports the test orders' amount and currency
// on PaymentIntent retrievals, and it records every write by idempotency key.
type stripePeer struct {
	srv *httptest.Server

	mu     sync.Mutex
	writes map[string]int // "METHOD path key" → count
}

func newStripePeer(t *testing.T) *stripePeer {
	t.Helper()
	p := &stripePeer{writes: map[string]int{}}
	proxy := testenv.StripeMockProxy(t, orderAmount, orderCurrency)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			p.mu.Lock()
			p.writes[r.Method+" "+r.URL.Path+" "+r.Header.Get("Idempotency-Key")]++
			p.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// writeKeys lists every write Stripe received, sorted.
func (p *stripePeer) writeKeys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.writes))
	for k := range p.writes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
