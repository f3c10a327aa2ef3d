package inbox

import (
	"context"
	"fmt"
)

// EventByID reads one row the way the dispatcher's queries read rows
// (eventColumns, scanEvent), whatever its status: a test can check that a
// purged row, with no payload and no route, still scans.
func (s *Store) EventByID(ctx context.Context, id int64) (Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM webhook_inbox WHERE id = $1`, id)
	if err != nil {
		return Event{}, fmt.Errorf("read inbox event %d: %w", id, err)
	}
	events, err := scanEvents(rows, nil)
	if err != nil {
		return Event{}, err
	}
	if len(events) != 1 {
		return Event{}, fmt.Errorf("read inbox event %d: %d rows", id, len(events))
	}
	return events[0], nil
}
