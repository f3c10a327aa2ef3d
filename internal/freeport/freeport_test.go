package freeport

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPickHandsOutListenablePortsBelowTheEphemeralRange(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p, err := Pick("127.0.0.1")
		require.NoError(t, err)
		assert.True(t, p >= 20000 && p < 32768, "port %d", p)
		assert.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		require.NoError(t, err, "port %d", p)
		require.NoError(t, l.Close())
	}
}

func TestPickSkipsAPortInUseAndOneHandedOutBefore(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	inUse := busy.Addr().(*net.TCPAddr).Port

	first, err := Pick("127.0.0.1")
	require.NoError(t, err)
	// The candidates: the port a listener holds, the one handed out
	// already, then the ports above that one in turn.
	candidates, after := []int{inUse, first}, first
	next := func() int {
		if len(candidates) == 0 {
			after++
			return after
		}
		p := candidates[0]
		candidates = candidates[1:]
		return p
	}
	got, err := pick("127.0.0.1", next)
	require.NoError(t, err)
	assert.Empty(t, candidates, "both taken ports were proposed")
	assert.Greater(t, got, first, "neither the port in use nor the one handed out")
}

func TestPickGivesUpWhenNoCandidateIsFree(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	inUse := busy.Addr().(*net.TCPAddr).Port
	_, err = pick("127.0.0.1", func() int { return inUse })
	assert.ErrorContains(t, err, "no free port on 127.0.0.1")
}

func TestPickNeverHandsOutAReservedPort(t *testing.T) {
	// A port this process was told to use, free now as a stopped server's
	// is: Reserve keeps Pick off it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	told := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	Reserve(told)
	proposed, after := false, told
	got, err := pick("127.0.0.1", func() int {
		if !proposed {
			proposed = true
			return told
		}
		after++
		return after
	})
	require.NoError(t, err)
	assert.Greater(t, got, told, "the reserved port was proposed and skipped")
}
