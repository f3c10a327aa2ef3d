package config

import (
	"fmt"
	"os"
	"reflect"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// LoadOptions say where the config comes from.
type LoadOptions struct {
	// File is an optional config file (YAML, JSON or TOML); empty means the
	// CRMFLOW_CONFIG env var, and no file if that is empty too.
	File string
	// Dev fills in the documented dev secrets where none are set.
	Dev bool
	// Operator loads for an operator command (crmflow credentials, dlq,
	// rotation, order, ...), which talks to PostgreSQL and Temporal
	// directly. It is dev, as Dev, only while it talks to the local dev
	// stack: neither database_url nor temporal.address is configured (by
	// the environment or the config file). Otherwise it is production: no
	// dev secret is filled in or accepted, and master_key and api_tokens
	// are required, so a missing one is named before anything is
	// connected to, and a production secret is never sealed under the
	// public dev master key.
	Operator bool
	// Environ replaces os.Environ when non-nil (tests).
	Environ []string
}

// Load resolves the configuration and validates it, returning every problem
// at once.
func Load(opts LoadOptions) (*Config, error) {
	environ := opts.Environ
	if environ == nil {
		environ = os.Environ()
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}

	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	file := opts.File
	if file == "" {
		file = env[EnvPrefix+"_CONFIG"]
	}
	if file != "" {
		v.SetConfigFile(file)
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("read config file %s: %w", file, err)
		}
	}
	// Env vars are applied by hand from the given environment instead of
	// viper.AutomaticEnv, so tests can pass their own without touching the
	// process environment.
	for _, k := range Keys() {
		if val, ok := env[EnvVar(k)]; ok {
			v.Set(k, val)
		}
	}

	var cfg Config
	var problems []string
	err := v.Unmarshal(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			splitCommaHook,
		)
		dc.WeaklyTypedInput = true
	})
	if err != nil {
		problems = append(problems, decodeProblems(err)...)
	}
	cfg.DevMode = opts.Dev || opts.Operator && !configured(v, env, "database_url", "temporal.address")
	switch {
	case cfg.DevMode:
		cfg.applyDevDefaults()
	case opts.Operator && len(cfg.APITokens) == 0:
		problems = append(problems, problem("api_tokens",
			"required by operator commands outside `crmflow dev` (database_url or temporal.address is configured): the deployment's start-API tokens"))
	}
	if err := cfg.validate(problems); err != nil {
		return &cfg, err
	}
	return &cfg, nil
}

// configured reports whether any of keys is set to something by the
// environment or the config file, rather than left to its default. Any
// value counts, blanks included: a value that is not a usable target must
// fail validation as production config, not fall back to dev.
func configured(v *viper.Viper, env map[string]string, keys ...string) bool {
	for _, key := range keys {
		val, fromEnv := env[EnvVar(key)]
		if !fromEnv && v.InConfig(key) {
			val = v.GetString(key)
		}
		if val != "" {
			return true
		}
	}
	return false
}

// splitCommaHook turns "a, b" into []string{"a","b"} for list keys set from
// env vars, dropping empty entries.
func splitCommaHook(from, to reflect.Type, data any) (any, error) {
	if from.Kind() != reflect.String || to.Kind() != reflect.Slice {
		return data, nil
	}
	var out []string
	for _, p := range strings.Split(data.(string), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// decodeProblems turns mapstructure's joined error into one line per key.
func decodeProblems(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "*"))
		if line == "" || strings.HasPrefix(line, "decoding failed due to") || strings.Contains(line, "error(s) decoding") {
			continue
		}
		out = append(out, line)
	}
	return out
}
