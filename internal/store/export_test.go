package store

import "context"

// InsertInboxBatch commits events as one shared commit, as concurrent
// InsertInboxEvent calls that queued together would be, and returns each
// event's outcome.
func (s *Store) InsertInboxBatch(ctx context.Context, events []InboxEvent) ([]bool, []error) {
	batch := make([]*inboxInsert, len(events))
	for i, e := range events {
		batch[i] = &inboxInsert{event: e, done: make(chan struct{})}
	}
	s.commitInbox(ctx, batch)
	inserted, errs := make([]bool, len(batch)), make([]error, len(batch))
	for i, req := range batch {
		inserted[i], errs[i] = req.inserted, req.err
	}
	return inserted, errs
}
