package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDevStackOnPostgresTemporal runs `crmflow dev` with Temporal on the
// dev PostgreSQL: crmflow is ready, Temporal's state is in databases of its
// own there with four history shards, and no SQLite file is written.
func TestDevStackOnPostgresTemporal(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole stack")
	}
	dataDir := t.TempDir()
	ports := freePorts(t)
	cfg := devConfig(t, dataDir, ports, "CRMFLOW_DEV_TEMPORAL_STORE=postgres")
	_, stop := startDev(t, cfg)

	code, body := get(t, "http://"+cfg.HTTPAddr+"/readyz")
	assert.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"temporal":{"status":"ok"`)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:"+strconv.Itoa(ports.pg)+"/temporal?sslmode=disable")
	require.NoError(t, err)
	defer conn.Close(ctx)
	var shards int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM shards`).Scan(&shards))
	assert.Equal(t, 4, shards)
	var namespaces int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM namespaces WHERE name = $1`, cfg.Temporal.Namespace).Scan(&namespaces))
	assert.Equal(t, 1, namespaces)
	_, err = os.Stat(filepath.Join(dataDir, "temporal.db"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no SQLite file when Temporal is on PostgreSQL")
	conn.Close(ctx)
	stop()
}

func TestDevRefusesUnknownTemporalStore(t *testing.T) {
	cmd := newDevCmd(&globals{})
	cmd.SetArgs([]string{"--temporal-store", "cassandra"})
	cmd.SetOut(&syncBuffer{})
	cmd.SetErr(&syncBuffer{})
	err := cmd.Execute()
	require.ErrorContains(t, err, "--temporal-store")
}
