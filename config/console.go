package config

import (
	"net/url"
	"time"
)

// ConsoleConfig configures the operator console at /console/.
type ConsoleConfig struct {
	// TemporalUIURL is the Temporal UI's base URL the console links parked
	// runs to, e.g. "https://temporal.example.com". Empty: `crmflow dev`
	// links to its embedded UI, other commands link nowhere.
	TemporalUIURL string `mapstructure:"temporal_ui_url" yaml:"temporal_ui_url"`
	// SecureCookies marks the console's cookies Secure even on plain HTTP
	// requests: set it when TLS ends at a proxy in front of crmflow.
	// Requests that arrive over TLS always get Secure cookies.
	SecureCookies bool `mapstructure:"secure_cookies" yaml:"secure_cookies"`
	// SessionTTL is how long a console session lasts at most.
	SessionTTL time.Duration `mapstructure:"session_ttl" yaml:"session_ttl"`
}

// consoleProblems checks the console.* keys.
func (c *Config) consoleProblems(add func(key, format string, args ...any)) {
	if u := c.Console.TemporalUIURL; u != "" {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			add("console.temporal_ui_url", "must be an http(s) URL such as https://temporal.example.com")
		}
	}
	if c.Console.SessionTTL <= 0 {
		add("console.session_ttl", "must be positive, e.g. %s", time.Duration(12*time.Hour))
	}
}
