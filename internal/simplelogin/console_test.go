package simplelogin_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/testsupport/providerhttptest"
)

func TestSimpleLoginConsoleModeSendsNothingAndAnswersFromMemory(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{}`))
	rec := &providerhttptest.Recorder{}
	// Key and URL are set on purpose: console mode must win over both.
	c := f.Client(simplelogin.WithConsole(rec))
	require.True(t, c.Console())
	ctx := context.Background()

	info, err := c.UserInfo(ctx)
	require.NoError(t, err)
	assert.Equal(t, "console@simplelogin.invalid", info.Email)

	_, err = c.FindByNote(ctx, "crmflow:alias/a1")
	require.ErrorIs(t, err, simplelogin.ErrAliasNotFound)

	a1, err := c.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Mode: simplelogin.ModeUUID, Note: "crmflow:alias/a1"})
	require.NoError(t, err)
	// Console ids are unique across restarts, not 1, 2, ... (see
	// providerhttp.UniqueConsoleID): the address is made from the id.
	require.Positive(t, a1.ID)
	assert.Equal(t, fmt.Sprintf("console-%d@simplelogin.invalid", a1.ID), a1.Email)
	assert.True(t, a1.Enabled)

	opts, err := c.AliasOptions(ctx, "shop.example")
	require.NoError(t, err)
	require.NotEmpty(t, opts.Suffixes)
	mbs, err := c.Mailboxes(ctx)
	require.NoError(t, err)
	a2, err := c.CreateCustomAlias(ctx, simplelogin.CustomAliasParams{
		Prefix: "News", SignedSuffix: opts.Suffixes[0].SignedSuffix, MailboxIDs: []int64{mbs[0].ID}, Note: "crmflow:alias/a2",
	})
	require.NoError(t, err)
	assert.Greater(t, a2.ID, a1.ID, "console ids increase")
	assert.Equal(t, fmt.Sprintf("news.console-%d@simplelogin.invalid", a2.ID), a2.Email)

	found, err := c.FindByNote(ctx, "crmflow:alias/a1")
	require.NoError(t, err)
	assert.Equal(t, a1.ID, found.ID, "console creations are found again, so look-before-create works in dev")

	got, err := c.SetEnabled(ctx, a1.ID, false)
	require.NoError(t, err)
	assert.False(t, got.Enabled)
	got, err = c.GetAlias(ctx, a1.ID)
	require.NoError(t, err)
	assert.False(t, got.Enabled)

	require.NoError(t, c.DeleteIfExists(ctx, a1.ID))
	require.NoError(t, c.DeleteIfExists(ctx, a1.ID))
	_, err = c.GetAlias(ctx, a1.ID)
	require.ErrorIs(t, err, simplelogin.ErrAliasNotFound)

	// An id from before a restart reads as an enabled alias.
	old, err := c.GetAlias(ctx, 9001)
	require.NoError(t, err)
	assert.Equal(t, "console-9001@simplelogin.invalid", old.Email)

	// Validation still applies, so console runs catch what SimpleLogin would refuse.
	_, err = c.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Mode: "emoji"})
	require.ErrorIs(t, err, simplelogin.ErrInvalidParams)

	assert.Empty(t, f.Requests(), "console mode must not send anything")
	require.NotEmpty(t, rec.Calls())
	var creates []simplelogin.Call
	for _, call := range rec.Calls() {
		if call.Method == http.MethodPost && strings.Contains(call.Path, "/new") {
			creates = append(creates, call)
		}
	}
	require.Len(t, creates, 2)
	assert.Equal(t, "/api/alias/random/new?mode=uuid", creates[0].Path)
	assert.JSONEq(t, `{"note":"crmflow:alias/a1"}`, string(creates[0].Body))
	assert.Equal(t, "/api/v3/alias/custom/new", creates[1].Path)
	assert.Equal(t, "GET", rec.Calls()[0].Method)
	assert.Equal(t, "/api/user_info", rec.Calls()[0].Path)
	assert.Nil(t, rec.Calls()[0].Body)
}
