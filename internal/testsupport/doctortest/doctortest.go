// Package doctortest gives the doctor's tests what they check against:
// stand-ins for Knock, SimpleLogin and Resend that answer a key check the
// way the real APIs do (method, path, auth header, error bodies), and a
// fresh Temporal namespace on the test binary's Temporal server.
//
// It is test support: it imports contract, config and internal/ libraries,
// never an upper room, so any room's tests may use it.
package doctortest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/temporalclient"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// The keys the stand-ins accept. Stripe's is stripe-mock's: any
// sk_test_… key.
const (
	KnockKey       = "sk_test_doctor_knock"
	SimpleLoginKey = "doctor-simplelogin-key"
	ResendKey      = "re_doctor_full_access"
	// ResendSendingKey is a sending_access key: Resend answers 401
	// restricted_api_key to anything but sending.
	ResendSendingKey = "re_doctor_sending_only"
	StripeKey        = "sk_test_doctor"
)

// Request is one request a stand-in saw.
type Request struct {
	Provider, Method, Path, Query string
	// Auth is the credential header's value: Authorization for Knock and
	// Resend, Authentication for SimpleLogin.
	Auth string
}

// Peers are the three stand-ins.
type Peers struct {
	Knock, SimpleLogin, Resend *httptest.Server

	mu       sync.Mutex
	requests []Request
}

// NewPeers starts the stand-ins; they stop when the test ends.
func NewPeers(t testing.TB) *Peers {
	p := &Peers{}
	p.Knock = httptest.NewServer(http.HandlerFunc(p.knock))
	p.SimpleLogin = httptest.NewServer(http.HandlerFunc(p.simpleLogin))
	p.Resend = httptest.NewServer(http.HandlerFunc(p.resend))
	t.Cleanup(p.Knock.Close)
	t.Cleanup(p.SimpleLogin.Close)
	t.Cleanup(p.Resend.Close)
	return p
}

// Requests returns what the stand-ins have seen so far.
func (p *Peers) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// Configure points cfg's provider URLs at the stand-ins.
func (p *Peers) Configure(cfg *config.Config) {
	cfg.Knock.APIURL = p.Knock.URL
	cfg.SimpleLogin.APIURL = p.SimpleLogin.URL
	cfg.Resend.APIURL = p.Resend.URL
}

func (p *Peers) record(provider string, r *http.Request, auth string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, Request{Provider: provider, Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: auth})
}

// knock answers GET /v1/users/{id}: no such user (404, Knock's error body)
// for the right bearer key, 401 otherwise; its router answers any other
// path with its own 404 shape.
func (p *Peers) knock(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	p.record("knock", r, auth)
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v1/users/") {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"errors":{"detail":"404 Not Found"}}`)
		return
	}
	switch auth {
	case "":
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"api_key_missing","message":"no API key","status":401,"type":"authentication_error"}`)
	case "Bearer " + KnockKey:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"code":"resource_missing","message":"The resource you requested does not exist","status":404,"type":"invalid_request_error"}`)
	default:
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"code":"authentication_required","message":"invalid API key","status":401,"type":"authentication_error"}`)
	}
}

// simpleLogin answers GET /api/user_info for the right Authentication
// header (no Bearer: that is SimpleLogin's scheme), 401 otherwise.
func (p *Peers) simpleLogin(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authentication")
	p.record("simplelogin", r, auth)
	if r.Method != http.MethodGet || r.URL.Path != "/api/user_info" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if auth != SimpleLoginKey {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"Wrong api key"}`)
		return
	}
	fmt.Fprint(w, `{"name":"Doctor","email":"doctor@example.com","is_premium":true,"in_trial":false,"max_alias_free_plan":10,"can_create_reverse_alias":true,"profile_picture_url":null,"connected_proton_address":null}`)
}

// resend answers GET /api-keys: the list for the full-access key, 401
// restricted_api_key for the sending-only key, 401 missing_api_key without a
// key and 403 invalid_api_key for any other.
func (p *Peers) resend(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	p.record("resend", r, auth)
	w.Header().Set("Content-Type", "application/json")
	if r.Method != http.MethodGet || r.URL.Path != "/api-keys" {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"statusCode":404,"name":"not_found","message":"Not found"}`)
		return
	}
	switch auth {
	case "":
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"statusCode":401,"name":"missing_api_key","message":"Missing API key in the authorization header."}`)
	case "Bearer " + ResendKey:
		fmt.Fprint(w, `{"object":"list","has_more":false,"data":[{"id":"key_1","name":"crmflow","created_at":"2026-01-01T00:00:00.000Z","last_used_at":null}]}`)
	case "Bearer " + ResendSendingKey:
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"statusCode":401,"name":"restricted_api_key","message":"This API key is restricted to only send emails"}`)
	default:
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"statusCode":403,"name":"invalid_api_key","message":"API key is invalid"}`)
	}
}

var namespaceSeq atomic.Int64

// Namespace registers a namespace of its own for the test on the test
// binary's Temporal server, with crmflow's search attributes when
// searchAttributes is true, and returns its name and a client bound to it.
func Namespace(t testing.TB, searchAttributes bool) (string, client.Client) {
	t.Helper()
	srv := testenv.Temporal(t)
	ns := fmt.Sprintf("doctor-%d-%d", time.Now().UnixNano(), namespaceSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr(), Namespace: ns, Logger: quiet{}})
	if err != nil {
		t.Fatalf("doctortest: dial temporal: %v", err)
	}
	t.Cleanup(c.Close)
	_, err = c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	})
	if err != nil {
		t.Fatalf("doctortest: register namespace: %v", err)
	}
	if searchAttributes {
		// The frontend learns of a new namespace through its cache refresh:
		// retry until it does.
		eventually(ctx, t, "register search attributes", func() error {
			return temporalclient.RegisterSearchAttributes(ctx, c, ns)
		})
		// It learns of the namespace's new attributes the same way, so a
		// start that carries them may still be refused for a moment, as on
		// any Temporal server: wait until a query can name every one.
		query := searchAttributesQuery()
		eventually(ctx, t, "use the search attributes", func() error {
			_, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: ns, Query: query})
			return err
		})
	}
	return ns, c
}

// searchAttributesQuery is a visibility query naming every crmflow search
// attribute, which the frontend refuses while it does not know one of them.
func searchAttributesQuery() string {
	var terms []string
	for name, typ := range contract.SearchAttributes() {
		value := "'probe'"
		if typ == enumspb.INDEXED_VALUE_TYPE_BOOL {
			value = "true"
		}
		terms = append(terms, name+" = "+value)
	}
	slices.Sort(terms)
	return strings.Join(terms, " AND ")
}

// Eventually retries try until it succeeds, failing the test after a
// minute: the frontend learns of a new namespace only through its cache
// refresh, so setting one up (search attributes, schedules) is retried.
func Eventually(t testing.TB, what string, try func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	eventually(ctx, t, what, func() error { return try(ctx) })
}

func eventually(ctx context.Context, t testing.TB, what string, try func() error) {
	t.Helper()
	for {
		err := try()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("doctortest: %s: %v", what, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// quiet drops the SDK's log lines.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}
