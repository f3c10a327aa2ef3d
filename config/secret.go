package config

import (
	"encoding/json"
	"log/slog"

	"go.yaml.in/yaml/v3"
)

// redacted is what any printed secret looks like.
const redacted = "[redacted]"

// Secret is a configuration value that must never be printed or logged. Every
// formatting path (fmt, slog, JSON, YAML) shows "[redacted]" or "" instead of
// the value; Reveal returns it for the one place that needs it.
type Secret string

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String shows whether the secret is set, never its value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// LogValue keeps slog from printing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON writes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML writes the redacted form.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// Redacted renders the configuration as YAML, in the config file's own keys,
// with every secret replaced by "[redacted]".
func (c *Config) Redacted() (string, error) {
	out, err := yaml.Marshal(c)
	if err != nil {
		return "", err
	}
	return string(out), nil
}
