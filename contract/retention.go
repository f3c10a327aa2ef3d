package contract

import "time"

// DataRetentionInput is what one data-retention run keeps. The worker puts
// the retention.* configuration here when it creates the Schedule, so the
// Schedule's action shows what runs remove. A zero duration keeps that kind
// of row for ever; the zero value removes nothing.
type DataRetentionInput struct {
	// Inbox: handed-off inbox rows received longer ago lose their payload
	// and route and stay as compact records for deduplication.
	Inbox time.Duration `json:"inbox,omitempty"`
	// Dedup: compact inbox records received longer ago are deleted; a
	// redelivery of their event is new again. Only purged rows are
	// deleted, so it takes effect only with Inbox set.
	Dedup time.Duration `json:"dedup,omitempty"`
	// DeadLetters: dead letters resolved, skipped or aborted longer ago
	// are deleted.
	DeadLetters time.Duration `json:"dead_letters,omitempty"`
	// Audit: audit_log entries written longer ago are deleted.
	Audit time.Duration `json:"audit,omitempty"`
	// BatchSize is how many rows one statement removes; zero means the
	// default (1000).
	BatchSize int `json:"batch_size,omitempty"`
}

// DataRetentionResult is what one run removed, by kind of row.
type DataRetentionResult struct {
	InboxPurged        int64 `json:"inbox_purged"`
	InboxDeleted       int64 `json:"inbox_deleted"`
	DeadLettersDeleted int64 `json:"dead_letters_deleted"`
	AuditDeleted       int64 `json:"audit_deleted"`
}
