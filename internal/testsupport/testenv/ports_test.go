package testenv

import (
	"net"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHoldPortKeepsAStoppedServersPortUntilReleased: while held, nobody
// else can listen on the port; once released, the server can again.
func TestHoldPortKeepsAStoppedServersPortUntilReleased(t *testing.T) {
	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	server, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	require.NoError(t, server.Close(), "the server stops")

	h := HoldPort(t, port)
	_, err = net.Listen("tcp", addr)
	require.ErrorIs(t, err, syscall.EADDRINUSE, "another listener cannot take the held port")
	_, err = net.Listen("tcp", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	require.ErrorIs(t, err, syscall.EADDRINUSE, "nor one on every address")
	_, err = net.Dial("tcp", addr)
	require.ErrorIs(t, err, syscall.ECONNREFUSED, "a client is refused, as with the server down")

	h.Release()
	h.Release() // twice is harmless
	restarted, err := net.Listen("tcp", addr)
	require.NoError(t, err, "the server starts again on its port")
	require.NoError(t, restarted.Close())
}
