package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stripeMockStartTimeout covers loading stripe-mock's embedded OpenAPI spec,
// which takes seconds on a busy CI machine running tests with -race.
const stripeMockStartTimeout = 60 * time.Second

var (
	stripeMockOnce sync.Once
	stripeMock     *stripeMockProcess
	stripeMockErr  error
)

// StripeMockURL returns the base URL (http://127.0.0.1:<port>) of a
// stripe-mock started once per test binary and stopped by Main. stripe-mock
// keeps no state, so tests can share it freely.
//
// The binary is $STRIPE_MOCK_BIN (set by the Makefile), else
// .tools/bin/stripe-mock in the module, else stripe-mock on PATH. A missing
// binary fails the test rather than skipping it, so CI cannot pass without
// having run the Stripe tests.
func StripeMockURL(t testing.TB) string {
	t.Helper()
	stripeMockOnce.Do(func() {
		var bin string
		bin, stripeMockErr = stripeMockBinary()
		if stripeMockErr != nil {
			return
		}
		stripeMock, stripeMockErr = startStripeMock(bin)
	})
	if stripeMockErr != nil {
		t.Fatalf("testenv: stripe-mock: %v", stripeMockErr)
	}
	return stripeMock.url
}

// StripeMockProxy is a reverse proxy to the binary's stripe-mock that
// answers PaymentIntent retrievals as succeeded, for amountCents in
// currency (PaymentIntentSucceeded): stripe-mock's fixtures carry random
// amounts, and a test's orders have known ones. Tests put it behind a
// handler that records what they need.
func StripeMockProxy(t testing.TB, amountCents int64, currency string) *httputil.ReverseProxy {
	t.Helper()
	return StripeMockPaymentIntents(t, func(pi map[string]any) { PaymentIntentSucceeded(pi, amountCents, currency) })
}

// PaymentIntentSucceeded makes pi, a PaymentIntent as stripe-mock answers
// it, a succeeded payment of amountCents in currency for the order its id
// names: tests call the PaymentIntent of order o-1 pi_o-1, and a real one
// carries its order in metadata.order_id, which crmflow checks.
func PaymentIntentSucceeded(pi map[string]any, amountCents int64, currency string) {
	pi["amount"], pi["amount_received"], pi["currency"], pi["status"] = amountCents, amountCents, currency, "succeeded"
	id, _ := pi["id"].(string)
	metadata, _ := pi["metadata"].(map[string]any)
	if metadata == nil {
		metadata = map[string]any{}
	}
	metadata["order_id"] = strings.TrimPrefix(id, "pi_")
	pi["metadata"] = metadata
}

// StripeMockPaymentIntents is a reverse proxy to the binary's stripe-mock
// that hands every PaymentIntent it retrieves (GET
// /v1/payment_intents/{id}) to shape before answering, so a test can give
// it the amounts, order and customer it needs. The PaymentIntent's id is
// the one asked for.
func StripeMockPaymentIntents(t testing.TB, shape func(pi map[string]any)) *httputil.ReverseProxy {
	t.Helper()
	target, err := url.Parse(StripeMockURL(t))
	if err != nil {
		t.Fatalf("testenv: stripe-mock url: %v", err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = func(resp *http.Response) error {
		id, ok := strings.CutPrefix(resp.Request.URL.Path, "/v1/payment_intents/")
		if resp.Request.Method != http.MethodGet || !ok || strings.Contains(id, "/") || resp.StatusCode != http.StatusOK {
			return nil
		}
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		var pi map[string]any
		if err := json.Unmarshal(raw, &pi); err != nil {
			return err
		}
		pi["id"] = id
		shape(pi)
		out, err := json.Marshal(pi)
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(out))
		resp.ContentLength = int64(len(out))
		resp.Header.Del("Content-Length")
		return nil
	}
	return proxy
}

// stopStripeMock stops the binary's stripe-mock, if a test started one.
func stopStripeMock() {
	if stripeMock != nil {
		stripeMock.stop()
	}
}

// stripeMockBinary finds the stripe-mock executable.
func stripeMockBinary() (string, error) {
	const hint = "run `make tools`, or point STRIPE_MOCK_BIN at a stripe-mock binary"
	if bin := os.Getenv("STRIPE_MOCK_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("STRIPE_MOCK_BIN: %w; %s", err, hint)
		}
		return bin, nil
	}
	// `go test` run by hand does not go through the Makefile that sets
	// STRIPE_MOCK_BIN, but `make tools` has usually installed it here.
	if root, err := moduleRoot(); err == nil {
		bin := filepath.Join(root, ".tools", "bin", "stripe-mock")
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	bin, err := exec.LookPath("stripe-mock")
	if err != nil {
		return "", fmt.Errorf("no stripe-mock binary: %s", hint)
	}
	return bin, nil
}

// moduleRoot is the nearest directory at or above the working directory
// (the package under test) that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found")
		}
		dir = parent
	}
}

// stripeMockProcess is a running stripe-mock.
type stripeMockProcess struct {
	cmd    *exec.Cmd
	url    string
	output *tailBuffer
	done   chan struct{} // closed when the process has exited
}

// startStripeMock starts stripe-mock on loopback ports the kernel picks and
// waits until it answers an authenticated request.
func startStripeMock(bin string) (*stripeMockProcess, error) {
	// Port 0 lets the kernel choose, so concurrent test binaries never race
	// for a port; stripe-mock prints the address it got. Both addresses are
	// needed: given only -http-addr, stripe-mock also serves HTTPS on
	// [::]:12112, which is public and collides between test binaries.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	cmd.SysProcAttr = childProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &stripeMockProcess{cmd: cmd, output: &tailBuffer{max: 8 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.output
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}

	addrs := make(chan string, 1)
	go func() {
		// stripe-mock logs every request to stdout: keep reading to the
		// end, or it would block on a full pipe.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.output, line)
			if addr, ok := strings.CutPrefix(line, "Listening for HTTP at address: "); ok {
				select {
				case addrs <- strings.TrimSpace(addr):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(p.done)
	}()

	fail := func(err error) (*stripeMockProcess, error) {
		p.stop()
		return nil, fmt.Errorf("%w\nstripe-mock output:\n%s", err, p.output.String())
	}
	timeout := time.NewTimer(stripeMockStartTimeout)
	defer timeout.Stop()
	select {
	case addr := <-addrs:
		p.url = "http://" + addr
	case <-p.done:
		return fail(fmt.Errorf("exited before listening: %v", cmd.ProcessState))
	case <-timeout.C:
		return fail(errors.New("did not listen within " + stripeMockStartTimeout.String()))
	}

	ctx, cancel := context.WithTimeout(context.Background(), stripeMockStartTimeout)
	defer cancel()
	if err := waitStripeMockReady(ctx, p.url); err != nil {
		return fail(err)
	}
	return p, nil
}

// waitStripeMockReady polls until stripe-mock serves an authenticated list
// call, the cheapest request that goes through its whole router.
func waitStripeMockReady(ctx context.Context, url string) error {
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/v1/customers", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer sk_test_123")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v1/customers: %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop kills stripe-mock's process group and waits for it to exit. It has
// no state worth a graceful shutdown.
func (p *stripeMockProcess) stop() {
	if p.cmd.Process == nil {
		return
	}
	// Setpgid made the group id equal to the pid.
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		fmt.Fprintln(os.Stderr, "testenv: stripe-mock did not exit after SIGKILL")
	}
}

// tailBuffer keeps the last max bytes written, for failure messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

// Write implements io.Writer.
func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

// String returns what is kept.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
