package inbox

import "context"

// InsertBatch commits events as one shared commit, as concurrent Insert
// calls that queued together would be, and returns each event's outcome.
func (s *Store) InsertBatch(ctx context.Context, events []Event) ([]bool, []error) {
	batch := make([]*pendingInsert, len(events))
	for i, e := range events {
		batch[i] = &pendingInsert{event: e, done: make(chan struct{})}
	}
	s.commit(ctx, batch)
	inserted, errs := make([]bool, len(batch)), make([]error, len(batch))
	for i, req := range batch {
		inserted[i], errs[i] = req.inserted, req.err
	}
	return inserted, errs
}

// EventKey is the constraint whose refusal sends a batch round again with
// ON CONFLICT.
const EventKey = eventKey
