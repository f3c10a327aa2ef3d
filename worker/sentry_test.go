package worker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/telemetry"
	"github.com/crmflow/crmflow/worker"
)

// sentryPeer stands in for Sentry's ingest endpoint: it checks what Sentry
// would (path of the DSN's project, X-Sentry-Auth with the DSN's public key)
// and records the raw envelopes and the events parsed from them.
type sentryPeer struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	raw    bytes.Buffer
	events []sentryEvent
}

// sentryEvent is what the tests read of an event.
type sentryEvent struct {
	Message     string            `json:"message"`
	Level       string            `json:"level"`
	Environment string            `json:"environment"`
	Release     string            `json:"release"`
	Tags        map[string]string `json:"tags"`
	Fingerprint []string          `json:"fingerprint"`
	Exception   []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"exception"`
}

func newSentryPeer(t *testing.T) *sentryPeer {
	p := &sentryPeer{t: t}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.URL.Path != "/api/42/envelope/" ||
			!strings.Contains(r.Header.Get("X-Sentry-Auth"), "sentry_key=publickey") {
			t.Errorf("unexpected Sentry request %s %s auth %q", r.Method, r.URL.Path, r.Header.Get("X-Sentry-Auth"))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		events, err := parseEnvelope(body)
		if err != nil {
			t.Errorf("bad envelope: %v\n%s", err, body)
		}
		p.mu.Lock()
		p.raw.Write(body)
		p.events = append(p.events, events...)
		p.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// parseEnvelope reads the event items of a Sentry envelope: a header line,
// then per item a header line and a payload line.
func parseEnvelope(body []byte) ([]sentryEvent, error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	if !sc.Scan() {
		return nil, io.ErrUnexpectedEOF
	}
	var out []sentryEvent
	for sc.Scan() {
		var item struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(sc.Bytes(), &item); err != nil {
			return nil, err
		}
		if !sc.Scan() {
			return nil, io.ErrUnexpectedEOF
		}
		if item.Type != "event" {
			continue
		}
		var ev sentryEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, sc.Err()
}

func (p *sentryPeer) config() config.SentryConfig {
	dsn := strings.Replace(p.srv.URL, "http://", "http://publickey@", 1) + "/42"
	return config.SentryConfig{DSN: config.Secret(dsn), Environment: "test", Release: "crmflow@1.2.3"}
}

func (p *sentryPeer) reporter() *telemetry.SentryReporter {
	rep, err := telemetry.NewSentryReporter(p.config())
	require.NoError(p.t, err)
	require.NotNil(p.t, rep)
	return rep
}

// eventsFor returns the events tagged with the workflow ID.
func (p *sentryPeer) eventsFor(workflowID string) []sentryEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []sentryEvent
	for _, ev := range p.events {
		if ev.Tags["workflow_id"] == workflowID {
			out = append(out, ev)
		}
	}
	return out
}

func (p *sentryPeer) all() []sentryEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]sentryEvent(nil), p.events...)
}

func (p *sentryPeer) rawBytes() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

func TestSentryReporterSendsTagsNotInput(t *testing.T) {
	peer := newSentryPeer(t)
	rep := peer.reporter()
	rep.ReportParked(context.Background(), store.DeadLetter{
		ID: 7, WorkflowID: "order-confirmation/o1", RunID: "run-1", WorkflowType: "OrderConfirmation",
		Step: "notify-confirmation", Error: "knock: 401", ErrorType: "KnockAuthFailed",
		Input: []byte(`{"secret_looking":"do-not-send"}`),
	})
	rep.Flush(5 * time.Second)

	events := peer.all()
	require.Len(t, events, 1)
	ev := events[0]
	assert.Equal(t, map[string]string{
		"workflow_id": "order-confirmation/o1", "run_id": "run-1", "workflow_type": "OrderConfirmation",
		"step": "notify-confirmation", "error_type": "KnockAuthFailed", "dead_letter_id": "7",
	}, ev.Tags)
	assert.Equal(t, "test", ev.Environment)
	assert.Equal(t, "crmflow@1.2.3", ev.Release)
	assert.Equal(t, []string{"OrderConfirmation", "notify-confirmation", "KnockAuthFailed"}, ev.Fingerprint)
	assert.NotContains(t, peer.rawBytes(), "do-not-send", "the step's input never goes to Sentry")
}

func TestSentryReporterOffWithoutDSN(t *testing.T) {
	rep, err := telemetry.NewSentryReporter(config.SentryConfig{})
	require.NoError(t, err)
	assert.Nil(t, rep)
	// A nil reporter is safe to use, and there is nothing to intercept.
	rep.Flush(time.Millisecond)
	rep.ReportParked(context.Background(), store.DeadLetter{})
	rep.ReportActivityFailure(telemetry.ActivityFailure{})
	rep.ReportWorkflowFailure(telemetry.WorkflowFailure{})
	rep.ReportPanic("GET /", "boom")
	assert.Empty(t, worker.Interceptors(rep))
}
