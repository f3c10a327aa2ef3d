package reliability

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// tcpProxy sits between crmflow and PostgreSQL so a test can make the
// database hang (bytes stop flowing, connections stay open: what a stopped
// VM or a black-holed network looks like) without disturbing other tests,
// and freeze one connection right after PostgreSQL committed an INSERT.
type tcpProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu sync.Mutex
	// flowing is closed while bytes are forwarded; a fresh open channel
	// while the proxy hangs.
	flowing chan struct{}
	conns   map[net.Conn]struct{}
	// freezeArmed makes the next connection whose server reports an INSERT
	// stop forwarding right there; frozen is closed when that happened.
	freezeArmed bool
	frozen      chan struct{}
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	flowing := make(chan struct{})
	close(flowing)
	p := &tcpProxy{t: t, ln: ln, target: target, flowing: flowing, conns: map[net.Conn]struct{}{}, frozen: make(chan struct{})}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// databaseProxy puts a proxy between crmflow and the stack's database; it
// returns the proxy and the database URL that goes through it.
func (s *stack) databaseProxy() (*tcpProxy, string) {
	s.t.Helper()
	u, err := url.Parse(s.dbURL)
	if err != nil {
		s.t.Fatalf("parse database url: %v", err)
	}
	p := newTCPProxy(s.t, u.Host)
	u.Host = p.addr()
	return p, u.String()
}

// addr is where clients connect instead of target.
func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

// hang stops forwarding: connections stay open, nothing gets through.
func (p *tcpProxy) hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flowing:
		p.flowing = make(chan struct{})
	default:
	}
}

// resume forwards again, held bytes first.
func (p *tcpProxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.flowing:
	default:
		close(p.flowing)
	}
}

// freezeAfterInsert arms the freeze; it returns a channel closed once a
// connection froze.
func (p *tcpProxy) freezeAfterInsert() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.freezeArmed = true
	return p.frozen
}

func (p *tcpProxy) gate() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flowing
}

func (p *tcpProxy) close() {
	p.ln.Close()
	p.resume()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// track remembers a connection so close can end it.
func (p *tcpProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[c] = struct{}{}
}

func (p *tcpProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(client)
		go p.handle(client)
	}
}

func (p *tcpProxy) handle(client net.Conn) {
	defer client.Close()
	// A hanging database accepts connections and then says nothing.
	<-p.gate()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.track(server)
	defer server.Close()
	done := make(chan struct{}, 2)
	go func() { p.pipe(server, client, nil); done <- struct{}{} }()
	go func() { p.pipe(client, server, &pgMessages{}); done <- struct{}{} }()
	<-done
}

// pipe copies src to dst, waiting at the gate before every write. With msgs
// set it reads PostgreSQL backend messages and can freeze the connection.
func (p *tcpProxy) pipe(dst io.Writer, src io.Reader, msgs *pgMessages) {
	buf := make([]byte, 32<<10)
	frozen := false
	for {
		n, err := src.Read(buf)
		if n > 0 && !frozen {
			out := buf[:n]
			if msgs != nil {
				var cut bool
				out, cut = msgs.feed(buf[:n], p.claimFreeze)
				if cut {
					frozen = true
					p.mu.Lock()
					close(p.frozen)
					p.mu.Unlock()
				}
			}
			<-p.gate()
			if len(out) > 0 {
				if _, werr := dst.Write(out); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if c, ok := dst.(interface{ CloseWrite() error }); ok && !errors.Is(err, net.ErrClosed) {
				_ = c.CloseWrite()
			}
			return
		}
	}
}

// claimFreeze reports whether this connection is the one to freeze.
func (p *tcpProxy) claimFreeze() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.freezeArmed {
		return false
	}
	p.freezeArmed = false
	return true
}

// pgMessages splits the backend's byte stream into protocol messages (one
// type byte, a 4-byte length including itself, the body) so the proxy can
// stop right before the answer to an INSERT: PostgreSQL has executed (and,
// for a single statement outside a transaction, committed) it, but the
// client never learns.
type pgMessages struct {
	pending []byte
}

// feed takes newly read bytes and returns those to forward; cut is true
// when a CommandComplete "INSERT …" was reached and shouldFreeze agreed: the
// bytes before that message are returned and nothing after it ever is.
func (m *pgMessages) feed(b []byte, shouldFreeze func() bool) (out []byte, cut bool) {
	m.pending = append(m.pending, b...)
	i := 0
	for len(m.pending)-i >= 5 {
		size := int(binary.BigEndian.Uint32(m.pending[i+1 : i+5]))
		if len(m.pending)-i < 1+size {
			break
		}
		if m.pending[i] == 'C' && strings.HasPrefix(string(m.pending[i+5:i+1+size]), "INSERT") && shouldFreeze() {
			out = append(out, m.pending[:i]...)
			m.pending = nil
			return out, true
		}
		i += 1 + size
	}
	out = append(out, m.pending[:i]...)
	m.pending = append([]byte(nil), m.pending[i:]...)
	return out, false
}
