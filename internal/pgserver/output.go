package pgserver

import (
	"bufio"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// outputTail keeps the last lines a child process printed, so a failure can
// say what postgres or initdb said rather than just "exit status 1".
type outputTail struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func newOutputTail(maxLines int) *outputTail {
	return &outputTail{max: maxLines}
}

// Write makes outputTail usable as exec.Cmd output for short-lived commands.
func (o *outputTail) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		o.add(line)
	}
	return len(p), nil
}

func (o *outputTail) add(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lines = append(o.lines, line)
	if len(o.lines) > o.max {
		o.lines = o.lines[len(o.lines)-o.max:]
	}
}

// follow copies r line by line into the tail and the logger until EOF, which
// comes when the last process holding the pipe's write end has exited. The
// returned channel is closed then.
func (o *outputTail) follow(r io.ReadCloser, log *slog.Logger, proc string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = r.Close() }()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			line := sc.Text()
			o.add(line)
			log.Debug(line, "proc", proc)
		}
	}()
	return done
}

func (o *outputTail) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}

// tailSuffix formats the last n lines for appending to an error message.
func (o *outputTail) tailSuffix(n int) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	lines := o.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return ""
	}
	return "\n" + strings.Join(lines, "\n")
}
