package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestLookBackToTheReferralsCreation: a money step looks back to the
// referral's creation, never to later than the step's own first attempt,
// and keeps that attempt as its bound when the creation is unknown.
func TestLookBackToTheReferralsCreation(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		created time.Time
		want    time.Time
	}{
		{"created before the step: back to the creation", now.Add(-20 * 24 * time.Hour), now.Add(-20 * 24 * time.Hour)},
		{"unknown (recorded before it was passed on): the step's first attempt", time.Time{}, now},
		{"later than the step (clocks apart): the step's first attempt", now.Add(time.Minute), now},
	} {
		assert.Equal(t, c.want, lookBackTo(now, c.created), c.name)
	}
}
