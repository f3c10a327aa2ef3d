// Package openapicheck checks HTTP requests that crmflow's provider clients
// send in tests against the providers' published OpenAPI descriptions, with
// kin-openapi. The specs are data kept outside the repository: tests find
// them through CRMFLOW_SPECS_DIR (the Makefile sets it when the shared specs
// folder is present).
//
// With the variable unset, Load returns nil and the fakes skip their checks,
// while Require skips the test that exists only to prove the contract, saying
// why. With the variable set, a missing or unreadable spec fails the test:
// a wrong setting must never look like a passing contract.
//
// It is test support: it imports no crmflow package.
package openapicheck

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// EnvSpecsDir names the environment variable holding the specs folder.
const EnvSpecsDir = "CRMFLOW_SPECS_DIR"

// Provider describes one provider's spec and how requests map onto it.
type Provider struct {
	// Name is the provider as messages name it, e.g. "Knock".
	Name string
	// File is the spec's file name inside the specs folder.
	File string
	// Host is the host of the spec's server entry; requests a test server
	// received are re-addressed to it so the router matches them.
	Host string
	// ValidateDocument runs the spec's own validation after loading. Only
	// for specs that pass it: Knock's and SimpleLogin's fail on their own
	// example defects, which the router does not care about.
	ValidateDocument bool
	// Authenticate checks a request's credentials against the operation's
	// security scheme; nil accepts any request (the fakes check keys).
	Authenticate openapi3filter.AuthenticationFunc
	// Adapt, when set, rewrites the loaded spec into a form kin-openapi can
	// check requests with, keeping what it checks.
	Adapt func(doc *openapi3.T)
}

// The providers whose clients crmflow has, as the specs folder names them.
var (
	// Knock's spec (OpenAPI 3.0) does not declare the Idempotency-Key
	// header, which kin-openapi accepts as an undeclared header.
	Knock = Provider{Name: "Knock", File: "knock.openapi.yaml", Host: "api.knock.app"}
	// Resend's spec (OpenAPI 3.1) passes document validation, so a failure
	// there means a broken or different file. It documents no error answers.
	Resend = Provider{Name: "Resend", File: "resend.openapi.yaml", Host: "api.resend.com", ValidateDocument: true}
	// SimpleLogin's spec is community-written; its server URL is
	// https://app.simplelogin.io/api and request paths carry the /api prefix.
	// Its apiKey scheme names the Authentication header, which is checked.
	SimpleLogin = Provider{Name: "SimpleLogin", File: "simplelogin.openapi.yaml", Host: "app.simplelogin.io",
		Authenticate: APIKeyHeaderPresent}
	// Stripe's spec (OpenAPI 3.0, about 8 MB) is not in the specs folder:
	// it ships with stripe-mock, which validates requests against the same
	// file. testenv.StripeSpecPath finds the copy of the stripe-mock the
	// tests run; load it with LoadFile. Its security schemes are HTTP
	// bearer and basic, whose header is checked.
	Stripe = Provider{Name: "Stripe", File: "spec3.json", Host: "api.stripe.com", Authenticate: AuthorizationPresent,
		Adapt: IndexedDeepObjectArrays}
)

// Spec validates requests and answers against one provider's spec.
type Spec struct {
	provider Provider
	router   routers.Router
}

type loaded struct {
	once sync.Once
	spec *Spec
	err  error
}

// cache holds each spec once per test binary: loading Knock's takes a
// noticeable part of a second.
var cache sync.Map // path → *loaded

// Load returns the provider's spec, or nil when CRMFLOW_SPECS_DIR is unset.
// When it is set, a spec that is missing or does not load fails t with a
// message naming the variable and the file.
func Load(t testing.TB, p Provider) *Spec {
	t.Helper()
	dir := os.Getenv(EnvSpecsDir)
	if dir == "" {
		return nil
	}
	spec, err := loadCached(filepath.Join(dir, p.File), p)
	if err != nil {
		t.Fatalf("%s=%s is set but %s's OpenAPI spec cannot be used: %v "+
			"(point it at the folder holding %s, or unset it to skip the contract checks)",
			EnvSpecsDir, dir, p.Name, err, p.File)
	}
	return spec
}

// LoadFile returns the provider's spec read from path, for a spec that
// lives outside the specs folder (Stripe's ships with stripe-mock). A spec
// that is missing or does not load fails t.
func LoadFile(t testing.TB, p Provider, path string) *Spec {
	t.Helper()
	spec, err := loadCached(path, p)
	if err != nil {
		t.Fatalf("%s's OpenAPI spec at %s cannot be used: %v", p.Name, path, err)
	}
	return spec
}

// loadCached loads the spec at path once per test binary.
func loadCached(path string, p Provider) (*Spec, error) {
	v, _ := cache.LoadOrStore(path, &loaded{})
	l := v.(*loaded)
	l.once.Do(func() { l.spec, l.err = load(path, p) })
	return l.spec, l.err
}

// Require is Load for a test that exists only to check the contract: it
// skips the test, saying why, when CRMFLOW_SPECS_DIR is unset.
func Require(t testing.TB, p Provider) *Spec {
	t.Helper()
	if os.Getenv(EnvSpecsDir) == "" {
		t.Skipf("%s is not set: skipping the check of requests against %s's published OpenAPI spec "+
			"(set it to the folder holding %s)", EnvSpecsDir, p.Name, p.File)
	}
	return Load(t, p)
}

func load(path string, p Provider) (*Spec, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if p.ValidateDocument {
		if err := doc.Validate(context.Background()); err != nil {
			return nil, fmt.Errorf("validate %s: %w", path, err)
		}
	}
	if p.Adapt != nil {
		p.Adapt(doc)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", path, err)
	}
	return &Spec{provider: p, router: router}, nil
}

// route finds the spec operation of a request a test server received (or
// one built with httptest.NewRequest); body is the request's body, already
// read.
func (s *Spec) route(r *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	req := r.Clone(context.Background())
	req.URL.Scheme, req.URL.Host, req.Host = "https", s.provider.Host, s.provider.Host
	req.RequestURI = ""
	req.Body = io.NopCloser(bytes.NewReader(body))
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s is not an operation of %s's spec: %w", r.Method, r.URL.RequestURI(), s.provider.Name, err)
	}
	auth := s.provider.Authenticate
	if auth == nil {
		auth = openapi3filter.NoopAuthenticationFunc
	}
	return &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      route,
		Options:    &openapi3filter.Options{AuthenticationFunc: auth},
	}, nil
}

// ValidateRequest checks a request (method, path, query, headers, body)
// against the spec.
func (s *Spec) ValidateRequest(r *http.Request, body []byte) error {
	in, err := s.route(r, body)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateRequest(context.Background(), in)
}

// ValidateResponse checks an answer to the request against the spec. Only
// answers the spec documents can be checked; Resend's, for one, documents no
// errors.
func (s *Spec) ValidateResponse(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	in, err := s.route(r, reqBody)
	if err != nil {
		return err
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                in.Options,
	})
}

// Middleware wraps a provider test server's handler: every request it
// receives is checked against the spec and a failing one fails t (the
// handler still answers, so the test shows what the client did next). With
// responses, the handler's 2xx answers are checked too, which keeps fixtures
// honest. A nil s (specs not configured) checks nothing.
func (s *Spec) Middleware(t testing.TB, responses bool, next http.Handler) http.Handler {
	if s == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("%s test server: read request body: %v", s.provider.Name, err)
		}
		if err := s.ValidateRequest(r, body); err != nil {
			t.Errorf("request %s %s does not match %s's OpenAPI spec: %v", r.Method, r.URL.RequestURI(), s.provider.Name, err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if !responses {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if rec.Code >= 200 && rec.Code < 300 {
			if err := s.ValidateResponse(r, body, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
				t.Errorf("test server's answer to %s %s does not match %s's OpenAPI spec: %v", r.Method, r.URL.RequestURI(), s.provider.Name, err)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// APIKeyHeaderPresent stands in for authentication of apiKey-in-header
// schemes: rather than accept any request, it requires the header the
// scheme names to be present and non-empty, so the contract also covers the
// header the provider reads (SimpleLogin's is Authentication, not
// Authorization).
func APIKeyHeaderPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	sc := in.SecurityScheme
	if sc == nil || sc.Type != "apiKey" || sc.In != "header" {
		return fmt.Errorf("unexpected security scheme %q", in.SecuritySchemeName)
	}
	if in.RequestValidationInput.Request.Header.Get(sc.Name) == "" {
		return fmt.Errorf("missing %s header", sc.Name)
	}
	return nil
}

// AuthorizationPresent stands in for authentication of HTTP bearer and
// basic schemes (Stripe's): rather than accept any request, it requires an
// Authorization header of the scheme's kind with a credential.
func AuthorizationPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	sc := in.SecurityScheme
	if sc == nil || sc.Type != "http" {
		return fmt.Errorf("unexpected security scheme %q", in.SecuritySchemeName)
	}
	scheme, credential, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, sc.Scheme) || strings.TrimSpace(credential) == "" {
		return fmt.Errorf("no %s credential in the Authorization header", sc.Scheme)
	}
	return nil
}

// IndexedDeepObjectArrays adapts Stripe's spec to kin-openapi's decoding
// of deepObject query parameters, keeping what is checked:
//   - Stripe declares its array parameters (types, expand) as deepObject,
//     which OpenAPI defines for objects only and kin-openapi refuses for
//     arrays, failing every request to such an operation. On the wire they
//     are name[0]=a&name[1]=b, as stripe-go writes them: a deepObject whose
//     keys are the indexes. Each becomes an object of the array's items, so
//     the items' type and length are still checked. (The name[]=a form is
//     one kin-openapi cannot decode; crmflow's client never sends it.)
//   - Range filters such as created are anyOf a range object and an
//     integer; kin-openapi gives up on the anyOf without checking either.
//     The range object alone is kept, which checks created[gte]=… and the
//     like; a bare created=N is then not checked.
func IndexedDeepObjectArrays(doc *openapi3.T) {
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, ref := range op.Parameters {
				p := ref.Value
				if p == nil || p.In != openapi3.ParameterInQuery || p.Style != openapi3.SerializationDeepObject ||
					p.Schema == nil || p.Schema.Value == nil {
					continue
				}
				if v := p.Schema.Value; v.Type.Is(openapi3.TypeArray) {
					obj := openapi3.NewObjectSchema()
					obj.AdditionalProperties = openapi3.AdditionalProperties{Schema: v.Items}
					obj.MaxProps = v.MaxItems
					p.Schema = openapi3.NewSchemaRef("", obj)
					continue
				}
				var objects []*openapi3.SchemaRef
				for _, alt := range p.Schema.Value.AnyOf {
					if alt.Value != nil && alt.Value.Type.Is(openapi3.TypeObject) {
						objects = append(objects, alt)
					}
				}
				if len(objects) == 1 {
					p.Schema = objects[0]
				}
			}
		}
	}
}
