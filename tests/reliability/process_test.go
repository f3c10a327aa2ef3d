package reliability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// proc is one crmflow child process (`crmflow worker` or `crmflow serve`).
type proc struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	addr    string // its HTTP address (webhooks and API, or only ops)
	logPath string
	exited  chan struct{}
	waitErr error
}

// freeAddr is a free 127.0.0.1 port for a child's HTTP server.
func freeAddr(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testenv.FreePort(t)))
}

// childEnv is the environment of a child: the test's own, minus any
// CRMFLOW_* setting of the machine, plus the given configuration.
func childEnv(config map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CRMFLOW_") {
			env = append(env, kv)
		}
	}
	for k, v := range config {
		env = append(env, k+"="+v)
	}
	return env
}

// startProc runs `crmflow <mode>` with config as CRMFLOW_* variables and
// waits until its /healthz answers.
func startProc(t *testing.T, name, mode string, config map[string]string) *proc {
	t.Helper()
	p := spawnProc(t, name, mode, config)
	p.awaitHealthy(90 * time.Second)
	return p
}

// spawnProc starts `crmflow <mode>` without waiting for it. The process is
// SIGKILLed when the test ends, and its log is printed if the test failed.
func spawnProc(t *testing.T, name, mode string, config map[string]string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, addr: config["CRMFLOW_HTTP_ADDR"], exited: make(chan struct{})}
	p.logPath = filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatalf("%s: log file: %v", name, err)
	}
	p.cmd = exec.Command(crmflowBin, mode)
	p.cmd.Env = childEnv(config)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = childProcAttr()
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("%s: start crmflow %s: %v", name, mode, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- log of %s (crmflow %s) ---\n%s", name, mode, p.logTail(60))
		}
	})
	return p
}

// awaitHealthy polls /healthz until it answers 200.
func (p *proc) awaitHealthy(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-p.exited:
			p.t.Fatalf("%s exited before it was healthy (%v):\n%s", p.name, p.waitErr, p.logTail(40))
		default:
		}
		resp, err := client.Get("http://" + p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not healthy after %s:\n%s", p.name, timeout, p.logTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// url is the base URL of the process's HTTP server.
func (p *proc) url() string { return "http://" + p.addr }

// kill sends SIGKILL (no shutdown of any kind) and waits for the exit.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("%s: SIGKILL: %v", p.name, err)
	}
	<-p.exited
}

// alive reports whether the process still runs.
func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// logTail returns the last n lines of the process's output.
func (p *proc) logTail(n int) string {
	raw, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(raw, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// logCount counts the lines of the process's output that contain substr.
func (p *proc) logCount(substr string) int {
	raw, err := os.ReadFile(p.logPath)
	if err != nil {
		p.t.Errorf("%s: read log: %v", p.name, err)
		return 0
	}
	n := 0
	for _, line := range bytes.Split(raw, []byte("\n")) {
		if bytes.Contains(line, []byte(substr)) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or timeout passes; it fails the test
// with msg then. Tests assert outcomes this way, never durations.
func waitFor(t *testing.T, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if cond() {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("gave up after %s: %s", timeout, msg)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
