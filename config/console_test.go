package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
)

func TestConsoleDefaultsAndValidation(t *testing.T) {
	cfg, err := load(t, config.LoadOptions{Dev: true}, "X=1")
	require.NoError(t, err)
	assert.Equal(t, config.ConsoleConfig{SessionTTL: 12 * time.Hour}, cfg.Console)

	cfg, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_CONSOLE_TEMPORAL_UI_URL=https://temporal.example.com/",
		"CRMFLOW_CONSOLE_SECURE_COOKIES=true")
	require.NoError(t, err)
	assert.Equal(t, "https://temporal.example.com/", cfg.Console.TemporalUIURL)
	assert.True(t, cfg.Console.SecureCookies)

	_, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_CONSOLE_TEMPORAL_UI_URL=javascript:alert(1)",
		"CRMFLOW_CONSOLE_SESSION_TTL=0s")
	require.Error(t, err)
	require.True(t, config.IsValidation(err), "got %T: %v", err, err)
	assert.Contains(t, err.Error(), "console.temporal_ui_url (CRMFLOW_CONSOLE_TEMPORAL_UI_URL): must be an http(s) URL")
	assert.Contains(t, err.Error(), "console.session_ttl (CRMFLOW_CONSOLE_SESSION_TTL): must be positive")
}
