package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// crmflowBin is the crmflow binary built from this checkout by TestMain, so
// the tests always run the code under test, never a stale bin/crmflow.
var crmflowBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crmflow-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability: temp dir:", err)
		os.Exit(1)
	}
	crmflowBin = filepath.Join(dir, "crmflow")
	if err := buildCrmflow(crmflowBin); err != nil {
		fmt.Fprintln(os.Stderr, "reliability:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := testenv.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildCrmflow compiles ./cmd/crmflow with the go command that runs these
// tests (the build cache makes it cheap after the first time), stamped with
// a version as `make build` stamps it, so `crmflow worker` joins the Worker
// Deployment as in production.
func buildCrmflow(out string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("find the go command: %w", err)
	}
	cmd := exec.Command(goCmd, "build", "-ldflags", "-X main.version=reliability-test", "-o", out,
		"github.com/crmflow/crmflow/cmd/crmflow")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/crmflow: %w", err)
	}
	return nil
}
