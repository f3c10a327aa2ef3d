package config

import (
	"sort"

	"github.com/crmflow/crmflow/internal/providers"
)

// RotatedProviders lists the keys a key-rotation Schedule exists for:
// crmflow's own start-API token always, every other key that is
// configured; automatic rotations before those an operator does.
func (c *Config) RotatedProviders() []string {
	var out []string
	for _, kind := range []providers.Rotation{providers.RotationToken, providers.RotationAutomatic, providers.RotationManual} {
		for _, p := range providers.All() {
			if p.Rotation == kind && (kind == providers.RotationToken || c.SecretAt(p.ConfigKey) != "") {
				out = append(out, p.Name)
			}
		}
	}
	return out
}

// ConsoleProviders lists the providers that have no API key and so run in
// console mode: their calls are recorded, not sent.
func (c *Config) ConsoleProviders() []string {
	var out []string
	for _, p := range providers.Queued() {
		if c.SecretAt(p.ConfigKey) == "" {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

// ConfiguredKeys are the keys config sets, by provider name ("" for none),
// for seeding the credential store: each provider's key at its config key,
// and for crmflow's own token the first of api_tokens.
func (c *Config) ConfiguredKeys() map[string]string {
	out := map[string]string{}
	for _, p := range providers.All() {
		if p.ConfigKey != "" {
			out[p.Name] = c.SecretAt(p.ConfigKey).Reveal()
		}
	}
	return out
}
