package providerhttp

import (
	"testing"
	"time"
)

// fakeConsoleIDs is a lifetime of console ids with its own clock and
// random source.
func fakeConsoleIDs(clock *time.Time, random int64) *consoleIDs {
	return &consoleIDs{now: func() time.Time { return *clock }, random: func(int64) int64 { return random }}
}

// TestConsoleIDsOfALaterLifetimeNeverRepeat: a process that starts after
// another ended (a restart of crmflow dev) hands out none of the earlier
// one's ids, even when the earlier one drew the highest random part every
// time and made ten ids a millisecond, the later one the lowest, and a
// millisecond later.
func TestConsoleIDsOfALaterLifetimeNeverRepeat(t *testing.T) {
	clock := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	first := fakeConsoleIDs(&clock, consoleIDRandom-1)
	seen := map[int64]bool{}
	var highest int64
	for i := range 3000 {
		if i%10 == 0 {
			clock = clock.Add(time.Millisecond)
		}
		id := first.next()
		seen[id] = true
		highest = max(highest, id)
	}
	clock = clock.Add(time.Millisecond)
	second := fakeConsoleIDs(&clock, 0)
	for range 3000 {
		if id := second.next(); seen[id] || id <= highest {
			t.Fatalf("the later lifetime handed out %d; the earlier one's highest was %d", id, highest)
		}
	}
}

// TestConsoleIDsIncrease: within a lifetime every id is above the last,
// with the clock stuck and with the clock going back.
func TestConsoleIDsIncrease(t *testing.T) {
	clock := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	random := int64(1000)
	g := &consoleIDs{now: func() time.Time { return clock }, random: func(int64) int64 { random = (random + 997) % consoleIDRandom; return random }}
	last := g.next()
	for i := range 5000 {
		switch {
		case i == 2000:
			clock = clock.Add(-time.Hour) // NTP stepped back
		case i%7 == 0:
			clock = clock.Add(time.Millisecond)
		}
		id := g.next()
		if id <= last {
			t.Fatalf("id %d after %d", id, last)
		}
		last = id
	}
}

// TestConsoleIDsStayPositiveAndExactInJSON: ids are positive with a clock
// before the epoch, and at most 2^53-1 (exact in any JSON reader) until
// the year 2164.
func TestConsoleIDsStayPositiveAndExactInJSON(t *testing.T) {
	early := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	if id := fakeConsoleIDs(&early, 0).next(); id <= 0 {
		t.Errorf("id %d before the epoch", id)
	}
	late := time.Date(2164, 1, 1, 0, 0, 0, 0, time.UTC)
	if id := fakeConsoleIDs(&late, consoleIDRandom-1).next(); id > MaxConsoleID {
		t.Errorf("id %d in 2164 is above %d", id, MaxConsoleID)
	}
	if float64(MaxConsoleID) != float64(MaxConsoleID-1)+1 {
		t.Errorf("MaxConsoleID %d is not exact as a double", int64(MaxConsoleID))
	}
}

// TestUniqueConsoleIDsOfTwoClients: two console clients, one after the
// other as two lifetimes of a process (a restart takes far longer than the
// millisecond here), hand out no id twice, all positive and at most
// MaxConsoleID.
func TestUniqueConsoleIDsOfTwoClients(t *testing.T) {
	seen := map[int64]bool{}
	for lifetime := range 2 {
		c := New(acme, WithConsole(&memRecorder{}))
		for range 1000 {
			id := c.UniqueConsoleID()
			if seen[id] || id <= 0 || id > MaxConsoleID {
				t.Fatalf("lifetime %d handed out %d (seen before: %t)", lifetime+1, id, seen[id])
			}
			seen[id] = true
		}
		// The next lifetime starts at a later millisecond, as a restart
		// does; the 1000 ids fit in the millisecond they were made in.
		time.Sleep(2 * time.Millisecond)
	}
}
