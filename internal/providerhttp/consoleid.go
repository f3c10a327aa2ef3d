package providerhttp

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Console ids that something stores under a unique constraint (SimpleLogin
// alias ids, unique in crmflow's aliases table) must not repeat when the
// process restarts, nor between processes in console mode on one database.
// A counter from 1 repeats at every start. Such an id is instead
//
//	milliseconds since consoleIDEpoch << consoleIDBits | random below consoleIDRandom
//
// raised to one more than the last id the client handed out if it is not
// above it. The random part takes the lower half of a millisecond's 2048
// ids, so the ids made in one millisecond after the first count up inside
// the upper half instead of spilling into the next millisecond's.
//
//   - A later process lifetime starts at a later millisecond than any id
//     the earlier one handed out, so it cannot repeat one (unless the wall
//     clock went back across the restart, or the earlier process made more
//     than 1024 ids in one millisecond and so ran ahead of the clock).
//   - Processes running at once collide only if they make an id in the
//     same millisecond from the same random part: 1 in 1024 for two ids
//     made in the same millisecond, which console mode's pace (an alias per
//     request) makes remote; the random part also covers a clock that went
//     back.
//   - Within one client ids strictly increase, whatever the clock does.
//   - Ids stay positive and at most MaxConsoleID (2^53-1) until the year
//     2164, so every JSON reader reads them exactly, JavaScript's (the
//     Temporal UI's) and jq's included, which hold numbers as doubles.
//   - They increase with time, so "newest first" lists stay in order.
const (
	consoleIDBits   = 11
	consoleIDRandom = 1 << (consoleIDBits - 1)
)

// MaxConsoleID is the largest id UniqueConsoleID hands out: 2^53-1, the
// largest integer a double holds exactly.
const MaxConsoleID = 1<<53 - 1

// consoleIDEpoch is where the clock of console ids starts. Any fixed time
// in the past will do; a recent one leaves the most years below
// MaxConsoleID.
var consoleIDEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// consoleIDs hands out a client's unique console ids. The zero value is not
// usable: newConsoleIDs sets the clock and the random source, which tests
// replace.
type consoleIDs struct {
	now    func() time.Time
	random func(n int64) int64
	mu     sync.Mutex
	last   int64
}

func newConsoleIDs() *consoleIDs {
	return &consoleIDs{now: time.Now, random: rand.Int64N}
}

// next returns an id above every id g handed out before; see consoleIDBits
// for why it is unique across lifetimes.
func (g *consoleIDs) next() int64 {
	ms := max(g.now().Sub(consoleIDEpoch).Milliseconds(), 0)
	id := ms<<consoleIDBits | g.random(consoleIDRandom)
	g.mu.Lock()
	defer g.mu.Unlock()
	// last starts at 0, so the first id is positive even with a clock set
	// before the epoch.
	id = max(id, g.last+1)
	g.last = id
	return id
}
