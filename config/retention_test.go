package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/config"
)

func TestRetentionDefaultsAndPrinting(t *testing.T) {
	cfg, err := load(t, config.LoadOptions{Dev: true}, "X=1")
	require.NoError(t, err)
	const day = 24 * time.Hour
	assert.Equal(t, config.RetentionConfig{Inbox: 30 * day, Dedup: 90 * day, DeadLetters: 180 * day, Audit: 400 * day},
		cfg.Retention)
	out, err := cfg.Redacted()
	require.NoError(t, err)
	assert.Contains(t, out, "retention:\n    inbox: 720h0m0s\n    dedup: 2160h0m0s\n    dead_letters: 4320h0m0s\n    audit: 9600h0m0s\n",
		"`crmflow config` shows the retention")
}

func TestRetentionZeroKeepsForEver(t *testing.T) {
	cfg, err := load(t, config.LoadOptions{Dev: true}, "CRMFLOW_RETENTION_INBOX=0", "CRMFLOW_RETENTION_DEDUP=0",
		"CRMFLOW_RETENTION_DEAD_LETTERS=0", "CRMFLOW_RETENTION_AUDIT=0")
	require.NoError(t, err)
	assert.Equal(t, config.RetentionConfig{}, cfg.Retention)

	// Either window alone may be for ever.
	_, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_RETENTION_INBOX=0", "CRMFLOW_RETENTION_DEDUP=1h")
	require.NoError(t, err)
	_, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_RETENTION_INBOX=48h", "CRMFLOW_RETENTION_DEDUP=0")
	require.NoError(t, err)
}

func TestRetentionValidation(t *testing.T) {
	_, err := load(t, config.LoadOptions{Dev: true},
		"CRMFLOW_RETENTION_INBOX=-1h", "CRMFLOW_RETENTION_DEAD_LETTERS=-24h", "CRMFLOW_RETENTION_AUDIT=-1s")
	require.Error(t, err)
	require.True(t, config.IsValidation(err), "got %T: %v", err, err)
	for _, want := range []string{
		"retention.inbox (CRMFLOW_RETENTION_INBOX): must be 0 (keep for ever) or a positive duration, got -1h0m0s",
		"retention.dead_letters (CRMFLOW_RETENTION_DEAD_LETTERS): must be 0 (keep for ever) or a positive duration",
		"retention.audit (CRMFLOW_RETENTION_AUDIT): must be 0 (keep for ever) or a positive duration",
	} {
		assert.Contains(t, err.Error(), want)
	}

	_, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_RETENTION_INBOX=720h", "CRMFLOW_RETENTION_DEDUP=240h")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "retention.dedup (CRMFLOW_RETENTION_DEDUP): must be at least retention.inbox (720h0m0s)")

	_, err = load(t, config.LoadOptions{Dev: true}, "CRMFLOW_RETENTION_DEDUP=soon")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "retention.dedup")
}
