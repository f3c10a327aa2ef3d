package callstats

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Windows the console shows.
const (
	// Recent is the short window.
	Recent = 15 * time.Minute
	// Day is the long window, also the sparkline's span.
	Day = 24 * time.Hour
	// Slots is the number of sparkline bars over Day (one an hour).
	Slots = 24
	// liveFor is how recently a process must have reported its queues to
	// count: several publishing intervals, so a slow publish is no gap.
	liveFor = time.Minute
)

// Window is one integration's calls over a window.
type Window struct {
	Requests int64
	Errors   int64
	// P95 is the 95th percentile latency; zero without calls.
	P95 time.Duration
}

// ErrorRate is Errors over Requests, 0 without calls.
func (w Window) ErrorRate() float64 {
	if w.Requests == 0 {
		return 0
	}
	return float64(w.Errors) / float64(w.Requests)
}

// Slot is one sparkline bar: an hour's calls and failures.
type Slot struct {
	Start    time.Time
	Requests int64
	Errors   int64
}

// Circuit is a provider queue's state over every live process.
type Circuit struct {
	// Replicas counts the processes that reported the queue in the last
	// minute; Paused those of them that have paused it.
	Replicas, Paused int
	// PausedSince is the earliest pause still in force.
	PausedSince *time.Time
	// Pauses adds up the pauses the live processes made since they started.
	Pauses int
}

// Summary is what the console shows of one integration.
type Summary struct {
	Recent, Day Window
	// Slots are Day's hourly bars, oldest first.
	Slots [Slots]Slot
	// LastErrorClass and LastErrorAt are the last failure within Day.
	LastErrorClass string
	LastErrorAt    time.Time
	// Circuit is nil when no live process reports the provider's queue.
	Circuit *Circuit
}

// Read summarises every integration's last 24 hours as of now, and the
// provider queues of the processes alive now.
func Read(ctx context.Context, db *pgxpool.Pool, now time.Time) (map[string]*Summary, error) {
	ctx = Unmeasured(ctx)
	out := map[string]*Summary{}
	get := func(p string) *Summary {
		s := out[p]
		if s == nil {
			s = &Summary{}
			end := now.UTC().Truncate(time.Hour).Add(time.Hour)
			for i := range s.Slots {
				s.Slots[i].Start = end.Add(-time.Duration(Slots-i) * time.Hour)
			}
			out[p] = s
		}
		return s
	}
	dayStart := now.Add(-Day)
	rows, err := db.Query(ctx, `
SELECT provider, minute, requests, errors, latency, coalesce(last_error_class, ''), last_error_at
FROM provider_call_minutes WHERE minute >= $1`, dayStart.UTC().Truncate(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("read call statistics: %w", err)
	}
	defer rows.Close()
	type windowAcc struct{ recent, day Bucket }
	acc := map[string]*windowAcc{}
	for rows.Next() {
		var provider string
		var minute time.Time
		var b Bucket
		var latency []int64
		var errAt *time.Time
		if err := rows.Scan(&provider, &minute, &b.Requests, &b.Errors, &latency, &b.LastErrorClass, &errAt); err != nil {
			return nil, fmt.Errorf("read call statistics: %w", err)
		}
		copy(b.Latency[:], latency)
		if errAt != nil {
			b.LastErrorAt = *errAt
		}
		s := get(provider)
		a := acc[provider]
		if a == nil {
			a = &windowAcc{}
			acc[provider] = a
		}
		a.day.Add(b)
		if !minute.Before(now.Add(-Recent)) {
			a.recent.Add(b)
		}
		if i := slotOf(s, minute); i >= 0 {
			s.Slots[i].Requests += b.Requests
			s.Slots[i].Errors += b.Errors
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read call statistics: %w", err)
	}
	for p, a := range acc {
		s := get(p)
		s.Recent = Window{Requests: a.recent.Requests, Errors: a.recent.Errors, P95: a.recent.Quantile(.95)}
		s.Day = Window{Requests: a.day.Requests, Errors: a.day.Errors, P95: a.day.Quantile(.95)}
		s.LastErrorClass, s.LastErrorAt = a.day.LastErrorClass, a.day.LastErrorAt
	}
	if err := readCircuits(ctx, db, get); err != nil {
		return nil, err
	}
	return out, nil
}

// slotOf is the sparkline bar minute falls in, -1 outside the day.
func slotOf(s *Summary, minute time.Time) int {
	i := int(minute.Sub(s.Slots[0].Start) / time.Hour)
	if i < 0 || i >= Slots {
		return -1
	}
	return i
}

// readCircuits adds the queue states of the processes alive now.
func readCircuits(ctx context.Context, db *pgxpool.Pool, get func(string) *Summary) error {
	rows, err := db.Query(ctx, `
SELECT provider, paused, paused_since, pauses FROM provider_queue_states
WHERE reported_at > now() - make_interval(secs => $1)`, liveFor.Seconds())
	if err != nil {
		return fmt.Errorf("read queue states: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var provider string
		var paused bool
		var since *time.Time
		var pauses int
		if err := rows.Scan(&provider, &paused, &since, &pauses); err != nil {
			return fmt.Errorf("read queue states: %w", err)
		}
		s := get(provider)
		if s.Circuit == nil {
			s.Circuit = &Circuit{}
		}
		c := s.Circuit
		c.Replicas++
		c.Pauses += pauses
		if paused {
			c.Paused++
			if since != nil && (c.PausedSince == nil || since.Before(*c.PausedSince)) {
				c.PausedSince = since
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read queue states: %w", err)
	}
	return nil
}
