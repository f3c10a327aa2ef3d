package latencyproxy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/crmflow/crmflow/internal/testsupport/latencyproxy"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// TestLatencyEachWayKeepsOrderAndDoesNotAddUp: a round trip takes at least
// the minimum latency twice; bytes arrive whole and in order; many
// requests in flight at once on one connection each wait about one round
// trip, not the sum of theirs.
func TestLatencyEachWayKeepsOrderAndDoesNotAddUp(t *testing.T) {
	const lo, hi = 50 * time.Millisecond, 100 * time.Millisecond
	p := latencyproxy.Start(t, echoServer(t), latencyproxy.Options{Min: lo, Max: hi})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)

	start := time.Now()
	fmt.Fprintln(c, "ping")
	line, err := r.ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}
	if rtt := time.Since(start); rtt < 2*lo {
		t.Errorf("round trip %s, want at least %s", rtt, 2*lo)
	}

	// 50 requests written one after another, without waiting for answers.
	const n = 50
	var want bytes.Buffer
	start = time.Now()
	for i := range n {
		line := fmt.Sprintf("request %02d\n", i)
		want.WriteString(line)
		fmt.Fprint(c, line)
	}
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("bytes reordered or lost:\n%s", got)
	}
	if all := time.Since(start); all > n*lo {
		t.Errorf("%d pipelined round trips took %s: latencies added up", n, all)
	}

	// The latency can change while connections are open.
	p.SetLatency(latencyproxy.Options{})
	start = time.Now()
	fmt.Fprintln(c, "fast")
	if line, err := r.ReadString('\n'); err != nil || line != "fast\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}
	if rtt := time.Since(start); rtt >= 2*lo {
		t.Errorf("round trip %s after the latency was removed", rtt)
	}
}
