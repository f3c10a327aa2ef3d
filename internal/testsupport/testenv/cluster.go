package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/server/api/adminservice/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// clusterCount numbers the clusters of one test binary, so each gets
// databases of its own on the shared PostgreSQL.
var clusterCount atomic.Int64

// TemporalCluster is several Temporal servers in child processes, each with
// every service and ports of its own, sharing one PostgreSQL database so they
// form one cluster: ringpop finds the peers through the database's membership
// table and the history shards are spread over the live ones. Clients dial
// FrontendAddr, a TCP balancer in front of every node's frontend, as they
// would dial a load balancer in production.
type TemporalCluster struct {
	t     testing.TB
	opts  TemporalOptions
	nodes []*TemporalServer
	ports []int
	lb    *balancer
}

// StartTemporalCluster starts a cluster of n nodes on the binary's
// PostgreSQL and returns once every node sees all n in each service's ring. It
// is stopped when the test ends.
func StartTemporalCluster(t testing.TB, n int) *TemporalCluster {
	t.Helper()
	c := &TemporalCluster{
		t: t,
		opts: TemporalOptions{
			PostgresURL:      Postgres(t).URL(),
			PostgresDatabase: fmt.Sprintf("temporal_cluster%d", clusterCount.Add(1)),
			Cluster:          true,
		},
	}
	t.Cleanup(c.stop)
	for range n {
		c.ports = append(c.ports, FreePort(t))
		c.nodes = append(c.nodes, nil)
	}
	start := time.Now()
	// One after the other: started together on two cores, the nodes took
	// longer to agree on membership than the second one takes to start.
	for i := range n {
		c.Restart(i)
	}
	c.lb = newBalancer(t, c.FrontendAddrs())
	c.WaitMembers(n)
	t.Logf("testenv: temporal cluster of %d formed after %s", n, time.Since(start).Round(time.Millisecond))
	return c
}

// FrontendAddr is the balancer in front of every node's frontend.
func (c *TemporalCluster) FrontendAddr() string { return c.lb.addr() }

// FrontendAddrs are the nodes' own frontends, in node order.
func (c *TemporalCluster) FrontendAddrs() []string {
	out := make([]string, len(c.ports))
	for i, p := range c.ports {
		out[i] = fmt.Sprintf("127.0.0.1:%d", p)
	}
	return out
}

// Namespace is the namespace every node registered.
func (c *TemporalCluster) Namespace() string { return "default" }

// Node is the i-th node's server.
func (c *TemporalCluster) Node(i int) *TemporalServer { return c.nodes[i] }

// Kill ends node i with SIGKILL.
func (c *TemporalCluster) Kill(i int) { c.nodes[i].Kill() }

// Restart starts node i again on its frontend port (after Kill or Stop);
// it returns once the node's frontend answers.
func (c *TemporalCluster) Restart(i int) {
	c.t.Helper()
	if c.nodes[i] != nil {
		c.nodes[i].Stop()
	}
	s, err := c.startNode(i)
	if err != nil {
		c.t.Fatalf("testenv: start temporal node %d: %v", i, err)
	}
	c.nodes[i] = s
}

func (c *TemporalCluster) startNode(i int) (*TemporalServer, error) {
	opts := c.opts
	opts.Port = c.ports[i]
	return startTemporal(opts)
}

// WaitMembers waits until every live node sees want members in each
// service's ring (frontend, history, matching, worker).
func (c *TemporalCluster) WaitMembers(want int) {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		last = ""
		for i, s := range c.nodes {
			select {
			case <-s.done:
				continue
			default:
			}
			if msg := ringsShort(s.FrontendAddr(), want); msg != "" {
				last = fmt.Sprintf("node %d: %s", i, msg)
				break
			}
		}
		if last == "" {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Fatalf("testenv: temporal cluster did not reach %d members: %s", want, last)
}

// ringsShort asks a node's frontend how it sees the cluster; it returns ""
// when each ring has want members, or what is wrong.
func ringsShort(addr string, want int) string {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err.Error()
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := adminservice.NewAdminServiceClient(conn).DescribeCluster(ctx, &adminservice.DescribeClusterRequest{})
	if err != nil {
		return err.Error()
	}
	rings := resp.GetMembershipInfo().GetRings()
	if len(rings) < 4 {
		return fmt.Sprintf("%d rings", len(rings))
	}
	for _, r := range rings {
		if int(r.GetMemberCount()) != want {
			return fmt.Sprintf("%s ring has %d members", r.GetRole(), r.GetMemberCount())
		}
	}
	return ""
}

func (c *TemporalCluster) stop() {
	for _, s := range c.nodes {
		if s != nil {
			s.Stop()
		}
	}
}

// balancer forwards each connection to the first node, in turn, that
// accepts it, as a TCP load balancer in front of the frontends would: when a
// node dies its connections break and the clients' reconnects land on the
// others.
type balancer struct {
	ln       net.Listener
	backends []string
	next     atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
}

func newBalancer(t testing.TB, backends []string) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: balancer listen: %v", err)
	}
	b := &balancer{ln: ln, backends: backends, conns: map[net.Conn]struct{}{}}
	go b.accept()
	t.Cleanup(b.close)
	return b
}

func (b *balancer) addr() string { return b.ln.Addr().String() }

func (b *balancer) accept() {
	for {
		in, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.serve(in)
	}
}

func (b *balancer) serve(in net.Conn) {
	start := int(b.next.Add(1))
	var out net.Conn
	for i := range b.backends {
		conn, err := net.DialTimeout("tcp", b.backends[(start+i)%len(b.backends)], time.Second)
		if err == nil {
			out = conn
			break
		}
	}
	if out == nil || !b.track(in, out) {
		in.Close()
		if out != nil {
			out.Close()
		}
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		// Either side ending ends both, so a dead node's connections
		// break at the client too.
		dst.Close()
		src.Close()
	}
	go pipe(out, in)
	go pipe(in, out)
	wg.Wait()
	b.mu.Lock()
	delete(b.conns, in)
	delete(b.conns, out)
	b.mu.Unlock()
}

func (b *balancer) track(conns ...net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	for _, c := range conns {
		b.conns[c] = struct{}{}
	}
	return true
}

func (b *balancer) close() {
	b.ln.Close()
	b.mu.Lock()
	b.closed = true
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
}

// Shards are the history shards node i owns, as the cluster reports them
// through a live node's frontend.
func (c *TemporalCluster) Shards(i int) ([]int32, error) {
	var lastErr error
	for j, s := range c.nodes {
		select {
		case <-s.done:
			continue
		default:
		}
		conn, err := grpc.NewClient(c.FrontendAddrs()[j], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			lastErr = err
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := adminservice.NewAdminServiceClient(conn).DescribeHistoryHost(ctx,
			&adminservice.DescribeHistoryHostRequest{HostAddress: c.nodes[i].historyAddr})
		cancel()
		conn.Close()
		if err != nil {
			lastErr = err
			continue
		}
		return resp.GetShardIds(), nil
	}
	return nil, fmt.Errorf("no live node answered: %v", lastErr)
}
