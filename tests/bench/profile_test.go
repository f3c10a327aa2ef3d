package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// burn keeps a core busy for d in this package's code.
func burn(d time.Duration) int {
	n := 0
	for t0 := time.Now(); time.Since(t0) < d; {
		for i := range 10000 {
			n += i % 7
		}
	}
	return n
}

// TestProfileSeesWhereCPUGoes: CPU burnt in this package during a profiled
// phase shows as the benchmark process's time and as the load generator's
// package group; the baseline side, idle, shows none of it. Phases burn
// until the facts appear (a loaded machine may give the process little
// CPU), within a minute.
func TestProfileSeesWhereCPUGoes(t *testing.T) {
	var e Env
	deadline := time.Now().Add(time.Minute)
	for {
		require.NoError(t, e.profiled("MX", 0, "busy", func() error { burn(200 * time.Millisecond); return nil })())
		require.NoError(t, e.profiled("MX", 1, "idle", func() error { time.Sleep(10 * time.Millisecond); return nil })())
		p := e.profile("MX")
		busy := p.Sides[0]
		if valueOf(busy.Processes, groupBench) > 0 && valueOf(busy.InProcess, "load generator (tests/bench)") > 0 {
			require.Equal(t, "busy", p.Subject)
			require.Equal(t, "idle", p.Baseline)
			require.Less(t, valueOf(p.Sides[1].InProcess, "load generator (tests/bench)"), valueOf(busy.InProcess, "load generator (tests/bench)"))
			return
		}
		require.True(t, time.Now().Before(deadline), "no CPU seen in a minute: %+v", p)
	}
}

func valueOf(shares []CPUShare, name string) float64 {
	for _, s := range shares {
		if s.Name == name {
			return s.Seconds
		}
	}
	return 0
}
