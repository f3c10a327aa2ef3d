package simplelogin_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/testsupport/providerhttptest"
)

// TestConsoleAliasesOfTwoLifetimesDoNotCollide: two console clients, one
// after the other as two lifetimes of `crmflow dev` (a restart), never hand
// out the same alias id or address: crmflow stores both under unique
// constraints (aliases.simplelogin_id, aliases.alias_email), so a repeat
// would park every alias created after a restart.
func TestConsoleAliasesOfTwoLifetimesDoNotCollide(t *testing.T) {
	ctx := context.Background()
	ids, emails := map[int64]string{}, map[string]bool{}
	for lifetime := 1; lifetime <= 2; lifetime++ {
		c := simplelogin.NewConsole(&providerhttptest.Recorder{})
		for i := range 20 {
			note := fmt.Sprintf("crmflow:alias/life%d-%d", lifetime, i)
			a, err := c.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Mode: simplelogin.ModeUUID, Note: note})
			require.NoError(t, err)
			require.Positive(t, a.ID)
			prev, seen := ids[a.ID]
			require.False(t, seen, "lifetime %d handed out id %d again (first for %s)", lifetime, a.ID, prev)
			require.False(t, emails[a.Email], "lifetime %d handed out %s again", lifetime, a.Email)
			ids[a.ID], emails[a.Email] = note, true
		}
		// A restart starts at a later millisecond.
		time.Sleep(2 * time.Millisecond)
	}
}
