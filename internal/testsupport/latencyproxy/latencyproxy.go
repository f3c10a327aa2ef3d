// Package latencyproxy is a TCP proxy for tests that makes a fast local
// server look far away: every chunk of bytes, in each direction, reaches
// the other side a random latency (between Min and Max) after the proxy
// read it. Chunks keep their order, and a slow chunk holds back the ones
// behind it as a real link does, but latencies do not add up: many calls
// in flight on one connection (gRPC's HTTP/2 streams) each wait about one
// latency, not the sum. Bandwidth is not limited.
//
// Put it in front of a Temporal frontend to see how code that calls
// Temporal behaves when every call takes hundreds of milliseconds.
//
// It is test support: it imports no crmflow package.
package latencyproxy

import (
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// Options are the latency range of each chunk, each way.
type Options struct {
	Min, Max time.Duration
}

// Proxy forwards connections from Addr to its target with latency.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	opts  Options
	rnd   *rand.Rand
	conns map[net.Conn]struct{}
	done  bool
	wg    sync.WaitGroup
}

// Start listens on a free local port and forwards to target; the proxy is
// closed when the test ends.
func Start(t testing.TB, target string, opts Options) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("latencyproxy: listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{},
		rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))}
	p.SetLatency(opts)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is where clients connect instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetLatency changes the latency range for chunks read from now on. Max
// below Min is taken as Min.
func (p *Proxy) SetLatency(opts Options) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opts = Options{Min: opts.Min, Max: max(opts.Min, opts.Max)}
}

// latency draws one chunk's latency.
func (p *Proxy) latency() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	spread := p.opts.Max - p.opts.Min
	if spread <= 0 {
		return p.opts.Min
	}
	return p.opts.Min + time.Duration(p.rnd.Int64N(int64(spread)+1))
}

// Close stops accepting, closes every connection and waits for the
// forwarding goroutines to end.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return
	}
	p.done = true
	p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track remembers c so Close can end it; false once the proxy is closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handle(client)
	}
}

// handle forwards one connection both ways until either side closes it.
func (p *Proxy) handle(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(client) || !p.track(server) {
		client.Close()
		server.Close()
		return
	}
	defer p.untrack(client)
	defer p.untrack(server)
	var both sync.WaitGroup
	both.Add(2)
	// When one direction ends, the connection is over: close both ends so
	// the other direction ends too.
	end := sync.OnceFunc(func() { client.Close(); server.Close() })
	go func() { defer both.Done(); p.pipe(server, client, end); end() }()
	go func() { defer both.Done(); p.pipe(client, server, end); end() }()
	both.Wait()
}

// chunk is bytes read at one moment, due at the other side at due.
type chunk struct {
	b   []byte
	due time.Time
}

// pipe copies src to dst, each chunk delayed by its latency, in order;
// end closes both connections.
func (p *Proxy) pipe(dst, src net.Conn, end func()) {
	// Deep enough that reading never waits on a slow chunk's delivery in
	// practice; a full queue only slows the reader down, as a full TCP
	// window would.
	queue := make(chan chunk, 4096)
	go func() {
		defer close(queue)
		var last time.Time
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				due := time.Now().Add(p.latency())
				if due.Before(last) {
					due = last // never overtake the chunk before
				}
				last = due
				queue <- chunk{b: buf[:n], due: due}
			}
			if err != nil {
				return
			}
		}
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for c := range queue {
		if wait := time.Until(c.due); wait > 0 {
			timer.Reset(wait)
			<-timer.C
		}
		if _, err := dst.Write(c.b); err != nil {
			// Closing src ends the reader; drain what it queued meanwhile.
			end()
			for range queue {
			}
			return
		}
	}
}
