package testenv

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// stripeMockModule is the module stripe-mock is installed from (`make
// tools`); its source, in the Go module cache, holds the OpenAPI spec the
// binary embeds.
const stripeMockModule = "github.com/stripe/stripe-mock"

var (
	stripeSpecOnce sync.Once
	stripeSpecPath string
	stripeSpecErr  error
)

// StripeSpecPath returns the path of Stripe's OpenAPI spec (spec3.json)
// that the tests' stripe-mock validates requests against, so that a test
// server standing in for Stripe checks requests against the very same
// spec. It is the file stripe-mock's module ships (embedded/openapi), in
// the Go module cache at the version the binary was built from; `make
// tools` (go install) put it there. A missing spec fails the test, as a
// missing stripe-mock does.
func StripeSpecPath(t testing.TB) string {
	t.Helper()
	stripeSpecOnce.Do(func() { stripeSpecPath, stripeSpecErr = findStripeSpec() })
	if stripeSpecErr != nil {
		t.Fatalf("testenv: Stripe's OpenAPI spec: %v", stripeSpecErr)
	}
	return stripeSpecPath
}

func findStripeSpec() (string, error) {
	bin, err := stripeMockBinary()
	if err != nil {
		return "", err
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("read the build of %s: %w", bin, err)
	}
	if info.Main.Path != stripeMockModule || !strings.HasPrefix(info.Main.Version, "v") {
		return "", fmt.Errorf("%s is not a released %s (built from %s %s)", bin, stripeMockModule, info.Main.Path, info.Main.Version)
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMODCACHE: %w", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), stripeMockModule+"@"+info.Main.Version, "embedded", "openapi", "spec3.json")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("%w (run `go mod download %s@%s`, or `make tools`)", err, stripeMockModule, info.Main.Version)
	}
	return path, nil
}
