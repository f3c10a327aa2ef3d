package temporalclient_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/temporalclient"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// TestDialOverMutualTLS: with a CA file and a client certificate crmflow
// reaches a Temporal frontend that only speaks mTLS (here a TLS-terminating
// proxy in front of the test server, as a load balancer or Temporal Cloud's
// endpoint would be); without the certificate the handshake is refused.
func TestDialOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	serverCert := issue(t, ca, caKey, "temporal.test", x509.ExtKeyUsageServerAuth)
	clientCert := issue(t, ca, caKey, "crmflow-worker", x509.ExtKeyUsageClientAuth)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", clientCert.Certificate[0])
	keyDER, err := x509.MarshalPKCS8PrivateKey(clientCert.PrivateKey)
	require.NoError(t, err)
	writePEM(t, filepath.Join(dir, "client-key.pem"), "PRIVATE KEY", keyDER)

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	addr := tlsProxy(t, &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"h2"},
		MinVersion:   tls.VersionTLS12,
	}, testenv.Temporal(t).FrontendAddr())

	load := func(env ...string) *config.Config {
		cfg, err := config.Load(config.LoadOptions{Dev: true, Environ: append([]string{
			"CRMFLOW_TEMPORAL_ADDRESS=" + addr,
			"CRMFLOW_TEMPORAL_TLS_CA_FILE=" + filepath.Join(dir, "ca.pem"),
			"CRMFLOW_TEMPORAL_TLS_SERVER_NAME=temporal.test",
		}, env...)})
		require.NoError(t, err)
		return cfg
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := temporalclient.Dial(ctx, load("CRMFLOW_TEMPORAL_TLS_CERT_FILE="+filepath.Join(dir, "client.pem"),
		"CRMFLOW_TEMPORAL_TLS_KEY_FILE="+filepath.Join(dir, "client-key.pem")), logger, nil)
	require.NoError(t, err)
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	assert.NoError(t, err, "a call goes through the mTLS connection")
	c.Close()

	shortCtx, shortCancel := context.WithTimeout(ctx, 5*time.Second)
	defer shortCancel()
	_, err = temporalclient.Dial(shortCtx, load(), logger, nil)
	assert.Error(t, err, "without a client certificate the frontend refuses the connection")

	_, err = config.Load(config.LoadOptions{Dev: true, Environ: []string{
		"CRMFLOW_TEMPORAL_TLS_CERT_FILE=" + filepath.Join(dir, "client.pem"),
	}})
	assert.ErrorContains(t, err, "CRMFLOW_TEMPORAL_TLS_CERT_FILE", "a certificate without its key is a config error")
}

// TestTemporalTLSIsOffForPlainServers: no TLS setting means plain gRPC; an
// API key alone means TLS with the system's roots (Temporal Cloud).
func TestTemporalTLSIsOffForPlainServers(t *testing.T) {
	got, err := temporalclient.TLS(config.TemporalConfig{Address: "127.0.0.1:7233"})
	require.NoError(t, err)
	assert.Nil(t, got)
	got, err = temporalclient.TLS(config.TemporalConfig{APIKey: "cloud-key"})
	require.NoError(t, err)
	require.NotNil(t, got)
	assert.Nil(t, got.RootCAs, "the system's roots")
	_, err = temporalclient.TLS(config.TemporalConfig{TLSCAFile: filepath.Join(t.TempDir(), "missing.pem")})
	assert.Error(t, err)
}

// tlsProxy terminates TLS with cfg and forwards each connection to target.
func tlsProxy(t *testing.T, cfg *tls.Config, target string) string {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer out.Close()
				go func() { _, _ = io.Copy(out, in) }()
				_, _ = io.Copy(in, out)
			}()
		}
	}()
	return ln.Addr().String()
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crmflow test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return ca, key
}

func issue(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600))
}
