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
	c, err := net.Dial("tcp", addr)
	if err == nil {
		_, err = c.Read(make([]byte, 1))
		require.NoError(t, c.Close())
	}
	require.ErrorIs(t, err, syscall.ECONNRESET, "a client is reset, as by a server going down")

	h.Release()
	h.Release() // twice is harmless
	restarted, err := net.Listen("tcp", addr)
	require.NoError(t, err, "the server starts again on its port")
	require.NoError(t, restarted.Close())
}

// TestHoldPortTakesAPortItsServerLeftInTimeWait: a server that closed its
// connections first leaves them in TIME_WAIT on its port, as a stopped
// PostgreSQL does; the hold takes the port all the same.
func TestHoldPortTakesAPortItsServerLeftInTimeWait(t *testing.T) {
	port := FreePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	server, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	client, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	conn, err := server.Accept()
	require.NoError(t, err)
	require.NoError(t, conn.Close(), "the server closes first")
	_, err = client.Read(make([]byte, 1))
	require.Error(t, err, "the client sees the close")
	require.NoError(t, client.Close())
	require.NoError(t, server.Close())

	h := HoldPort(t, port)
	defer h.Release()
	_, err = net.Listen("tcp", addr)
	require.ErrorIs(t, err, syscall.EADDRINUSE, "the hold has the port")
}
