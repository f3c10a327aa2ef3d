package main

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/starter"
	"github.com/crmflow/crmflow/webhooks"
)

// tokenSeen tells the crmflow token rotation, once per version and process,
// that its new token was used: it waits for that before it retires the old
// token.
func tokenSeen(s *starter.Starter, logger *slog.Logger) func(ctx context.Context, p credentials.Principal) {
	var told sync.Map
	return func(ctx context.Context, p credentials.Principal) {
		if _, done := told.LoadOrStore(p.Subject, true); done {
			return
		}
		err := s.SignalKeyRotation(context.WithoutCancel(ctx), contract.KeyRotationCrmflow, contract.KeyRotationTokenSeenSignal, p.Version)
		if err != nil && !errors.Is(err, starter.ErrNotFound) {
			told.Delete(p.Subject) // the next use tells it again
			logger.Warn("Could not tell the token rotation its new token is in use", "error", err)
		}
	}
}

// secretProofs reads pending signing secrets from the store and tells the
// rotation when a genuine delivery proved one.
func secretProofs(creds *credentials.Store, s *starter.Starter) *webhooks.Proofs {
	return &webhooks.Proofs{
		Pending: func(ctx context.Context, provider string) ([]webhooks.PendingSecret, error) {
			pending, err := creds.PendingSecrets(ctx, provider, providers.DefaultKeyName)
			if err != nil {
				return nil, err
			}
			out := make([]webhooks.PendingSecret, len(pending))
			for i, c := range pending {
				out[i] = webhooks.PendingSecret{Version: c.Version, Secret: c.Secret.Reveal()}
			}
			return out, nil
		},
		Proven: func(ctx context.Context, provider string, version int) error {
			err := s.SignalKeyRotation(ctx, provider, contract.KeyRotationSecretProvenSignal, version)
			if errors.Is(err, starter.ErrNotFound) {
				return nil // no rotation waits for it
			}
			return err
		},
	}
}

// warnTokenDrift warns when a configured token is not what the credential
// store holds: after a rotation or a revocation the store is the truth,
// and config only seeds it.
func warnTokenDrift(ctx context.Context, cfg *config.Config, creds *credentials.Store, logger *slog.Logger) {
	check := func(what, token string) {
		if token == "" {
			return
		}
		if _, err := creds.Identify(ctx, token); errors.Is(err, credentials.ErrUnauthenticated) {
			logger.Warn("A configured token is not valid in the credential store (rotated or revoked there); the store decides", "token", what)
		}
	}
	for i, t := range cfg.ServiceTokens() {
		check("api_tokens["+strconv.Itoa(i)+"]", t)
	}
	for name, t := range cfg.Operators() {
		check("operator_tokens."+name, t)
	}
}

// devUIOrigins are the origins the codec lets in without a token: the
// embedded Temporal UI's, under `crmflow dev` only.
func devUIOrigins(cfg *config.Config) []string {
	if !cfg.DevMode {
		return nil
	}
	return cfg.CodecUIOrigins
}
