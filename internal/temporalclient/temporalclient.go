// Package temporalclient dials the Temporal frontend crmflow's config names:
// TLS or mTLS, Temporal Cloud API keys, and the data converter that encrypts
// every payload with the master key (internal/codec), so no secret reaches a
// workflow history in clear text.
//
// It is a library: it imports config, internal/codec and
// internal/credentials only.
package temporalclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
)

// Dial connects to the Temporal frontend named in cfg. It fails when the
// frontend cannot be reached within ctx, so a misconfigured address is
// reported at start rather than on the first workflow.
//
// Every payload and failure message it writes is encrypted with the master
// key (internal/codec), so no secret reaches a workflow history in clear
// text; operators decode through the codec endpoint.
//
// interceptors apply to the client and to every worker built from it
// (tracing: Tracing.ClientInterceptors).
func Dial(ctx context.Context, cfg *config.Config, logger *slog.Logger, metrics client.MetricsHandler,
	interceptors ...interceptor.ClientInterceptor) (client.Client, error) {
	keys, err := credentials.KeyringOf(cfg.MasterKeys())
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	dc := codec.NewDataConverter(keys)
	tlsConfig, err := TLS(cfg.Temporal)
	if err != nil {
		return nil, err
	}
	var creds client.Credentials
	if key := cfg.Temporal.APIKey.Reveal(); key != "" {
		creds = client.NewAPIKeyStaticCredentials(key)
	}
	c, err := client.DialContext(ctx, client.Options{
		HostPort:          cfg.Temporal.Address,
		Namespace:         cfg.Temporal.Namespace,
		Logger:            sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
		MetricsHandler:    metrics,
		DataConverter:     dc,
		FailureConverter:  codec.NewFailureConverter(dc),
		Interceptors:      interceptors,
		ConnectionOptions: client.ConnectionOptions{TLS: tlsConfig},
		Credentials:       creds,
	})
	if err != nil {
		return nil, fmt.Errorf("dial temporal at %s: %w", cfg.Temporal.Address, err)
	}
	return c, nil
}

// TLS is the TLS configuration of the Temporal connection, nil for
// plain gRPC (a local or in-cluster server). A client certificate makes it
// mTLS; a CA file replaces the system's roots.
func TLS(t config.TemporalConfig) (*tls.Config, error) {
	if !t.UsesTLS() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.TLSServerName}
	if t.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.TLSCertFile, t.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("temporal client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	if t.TLSCAFile != "" {
		pem, err := os.ReadFile(t.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("temporal CA file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("temporal CA file %s holds no PEM certificate", t.TLSCAFile)
		}
	}
	return c, nil
}
