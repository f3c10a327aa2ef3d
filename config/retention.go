package config

import "time"

// RetentionConfig bounds what crmflow keeps in PostgreSQL; the
// data-retention Schedule applies it daily. Zero keeps that kind of row for
// ever.
type RetentionConfig struct {
	// Inbox is how long a handed-off inbox row keeps its payload and
	// route. After it the row stays as a compact record (provider, event
	// id, status, times) for deduplication. Pending rows are never touched.
	// The default, 30 days, is longer than any provider retries a delivery.
	Inbox time.Duration `mapstructure:"inbox" yaml:"inbox"`
	// Dedup is how long, from receipt, an inbox row makes a redelivery of
	// its event a duplicate; after it the record is deleted and the same
	// event would be accepted again. Only purged rows are deleted, so with
	// Inbox = 0 rows are kept whole for ever and Dedup has no effect.
	Dedup time.Duration `mapstructure:"dedup" yaml:"dedup"`
	// DeadLetters is how long a dead letter is kept after it was resolved,
	// skipped or aborted; parked and retrying ones are always kept.
	DeadLetters time.Duration `mapstructure:"dead_letters" yaml:"dead_letters"`
	// Audit is how long audit_log entries are kept.
	Audit time.Duration `mapstructure:"audit" yaml:"audit"`
}

// retentionProblems checks the retention.* keys: none negative, and the
// dedup window no shorter than the payload window when both are set, since
// only purged rows are deleted and a shorter dedup would silently mean
// retention.inbox.
func (c *Config) retentionProblems(add func(key, format string, args ...any)) {
	r := c.Retention
	for _, k := range []struct {
		key string
		d   time.Duration
	}{{"retention.inbox", r.Inbox}, {"retention.dedup", r.Dedup}, {"retention.dead_letters", r.DeadLetters},
		{"retention.audit", r.Audit}} {
		if k.d < 0 {
			add(k.key, "must be 0 (keep for ever) or a positive duration, got %s", k.d)
		}
	}
	if r.Inbox > 0 && r.Dedup > 0 && r.Dedup < r.Inbox {
		add("retention.dedup", "must be at least retention.inbox (%s) when both are set: a record is kept for "+
			"deduplication after its payload is gone, got %s", r.Inbox, r.Dedup)
	}
}
