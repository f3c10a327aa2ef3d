// Package freeport picks TCP ports for servers that a process starts and
// that must be told their port before they listen: the embedded Temporal
// server's services, and the servers tests start and restart.
//
// Asking the kernel for port 0 and closing the listener is not enough: the
// port comes from the ephemeral range (32768–60999 on Linux), where every
// outgoing connection on the machine also takes its local port, so by the
// time the server binds, a connection may hold it ("address already in
// use"). Ports here come from below that range, which only listeners use.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
)

const (
	// low and high bound the ports handed out: [low, high). high is where
	// Linux's ephemeral ports begin, and it also keeps every port within a
	// SMALLINT, which Temporal's cluster_membership table stores.
	low, high = 20000, 32768
	// tries bounds the search; a machine with that many listeners taken in
	// the range has a bigger problem than a test's port.
	tries = 500
)

var (
	mu sync.Mutex
	// given holds every port this process handed out, so two servers it
	// starts never get the same one, even before either listens.
	given = map[int]bool{}
)

// Pick returns a port in [20000, 32768) on host that nothing listened on
// when it looked and that this process has not handed out before.
func Pick(host string) (int, error) {
	return pick(host, func() int { return low + rand.IntN(high-low) })
}

// Reserve records a port this process was told to use, not picked (a
// server restarted on the port its clients know), so Pick never hands it
// to another of the process's servers: while the server is down, or before
// it binds, the port is free and Pick would otherwise take it.
func Reserve(port int) {
	mu.Lock()
	defer mu.Unlock()
	given[port] = true
}

// pick tries the ports candidate proposes.
func pick(host string, candidate func() int) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	for range tries {
		p := candidate()
		if given[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("free port %d on %s: %w", p, host, err)
		}
		given[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port on %s in [%d, %d) after %d tries", host, low, high, tries)
}
