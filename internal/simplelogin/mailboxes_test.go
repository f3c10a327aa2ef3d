package simplelogin_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/simplelogin"
	"github.com/crmflow/crmflow/internal/testsupport/providerhttptest"
)

const mailboxesJSON = `{"mailboxes":[
 {"id":1,"email":"owner@example.com","default":true,"verified":true,"creation_timestamp":1,"nb_alias":3},
 {"id":9,"email":"ada@new.example","default":false,"verified":false,"creation_timestamp":2,"nb_alias":0}]}`

func TestEnsureMailboxFindsBeforeItCreates(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, mailboxesJSON))
	mb, err := f.Client().EnsureMailbox(context.Background(), " Ada@New.example ")
	require.NoError(t, err)
	assert.Equal(t, &simplelogin.Mailbox{ID: 9, Email: "ada@new.example"}, mb, "unverified until its owner follows the link")
	req := f.Only(t)
	assert.Equal(t, http.MethodGet, req.Method)
	assert.Equal(t, "/api/v2/mailboxes", req.Path)
}

func TestEnsureMailboxCreatesWhenMissing(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			answer(http.StatusCreated, nil, `{"id":12,"email":"bob@example.com","verified":false,"default":false,"creation_timestamp":3,"nb_alias":0}`)(w, r)
			return
		}
		answer(http.StatusOK, nil, mailboxesJSON)(w, r)
	})
	mb, err := f.Client().EnsureMailbox(context.Background(), "bob@example.com")
	require.NoError(t, err)
	assert.Equal(t, int64(12), mb.ID)
	assert.False(t, mb.Verified)
	reqs := f.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "POST /api/mailboxes", reqs[1].Method+" "+reqs[1].Path)
	assertHeaders(t, reqs[1], true)
	assert.JSONEq(t, `{"email":"bob@example.com"}`, string(reqs[1].Body))
}

// A creation whose answer was lost made the mailbox: the retry's POST is
// refused as "already used", and the second look finds it.
func TestEnsureMailboxAfterALostAnswerFindsTheFirstOne(t *testing.T) {
	lists := 0
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			answer(http.StatusBadRequest, nil, `{"error":"bob@example.com already used"}`)(w, r)
			return
		}
		lists++
		if lists == 1 {
			answer(http.StatusOK, nil, `{"mailboxes":[]}`)(w, r)
			return
		}
		answer(http.StatusOK, nil, `{"mailboxes":[{"id":12,"email":"bob@example.com","default":false,"verified":true}]}`)(w, r)
	})
	mb, err := f.Client().EnsureMailbox(context.Background(), "bob@example.com")
	require.NoError(t, err)
	assert.Equal(t, int64(12), mb.ID)
	assert.Len(t, f.Requests(), 3)
}

func TestEnsureMailboxOfAnAddressTheAccountCannotHold(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			answer(http.StatusBadRequest, nil, `{"error":"bob@example.com already used"}`)(w, r)
			return
		}
		answer(http.StatusOK, nil, `{"mailboxes":[]}`)(w, r)
	})
	_, err := f.Client().EnsureMailbox(context.Background(), "bob@example.com")
	require.ErrorIs(t, err, simplelogin.ErrMailboxNotFound)
	assert.Contains(t, err.Error(), "already used", "SimpleLogin's own words reach the operator")
}

func TestEnsureMailboxRefusesANonAddress(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{"mailboxes":[]}`))
	_, err := f.Client().EnsureMailbox(context.Background(), "not-an-address")
	require.ErrorIs(t, err, simplelogin.ErrInvalidParams)
}

func TestSetAliasMailboxesPatchesTheList(t *testing.T) {
	f := newFake(t, answer(http.StatusOK, nil, `{"ok":true}`))
	require.NoError(t, f.Client().SetAliasMailboxes(context.Background(), 7, []int64{12}))
	req := f.Only(t)
	assert.Equal(t, http.MethodPatch, req.Method)
	assert.Equal(t, "/api/aliases/7", req.Path)
	assertHeaders(t, req, true)
	assert.JSONEq(t, `{"mailbox_ids":[12]}`, string(req.Body))

	require.ErrorIs(t, f.Client().SetAliasMailboxes(context.Background(), 7, nil), simplelogin.ErrInvalidParams)
	require.ErrorIs(t, f.Client().SetAliasMailboxes(context.Background(), 0, []int64{1}), simplelogin.ErrInvalidParams)
}

func TestDeleteMailboxIfExists(t *testing.T) {
	ok := newFake(t, answer(http.StatusOK, nil, `{"deleted":true}`))
	require.NoError(t, ok.Client().DeleteMailboxIfExists(context.Background(), 12))
	req := ok.Only(t)
	assert.Equal(t, "DELETE /api/mailboxes/12", req.Method+" "+req.Path)

	// 403 for a mailbox the account no longer lists: already deleted.
	gone := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			answer(http.StatusForbidden, nil, `{"error":"Forbidden"}`)(w, r)
			return
		}
		answer(http.StatusOK, nil, mailboxesJSON)(w, r)
	})
	require.NoError(t, gone.Client().DeleteMailboxIfExists(context.Background(), 12))
	// ... but a 403 for one it still lists is an error.
	require.Error(t, gone.Client().DeleteMailboxIfExists(context.Background(), 9))
}

func TestConsoleMailboxesAreVerifiedAndFollowed(t *testing.T) {
	rec := &providerhttptest.Recorder{}
	c := simplelogin.NewConsole(rec)
	ctx := context.Background()
	mb, err := c.EnsureMailbox(ctx, "Ada@Example.com")
	require.NoError(t, err)
	assert.True(t, mb.Verified, "nobody receives a verification link in console mode")
	again, err := c.EnsureMailbox(ctx, "ada@example.com")
	require.NoError(t, err)
	assert.Equal(t, mb.ID, again.ID, "found, not created twice")

	a, err := c.CreateRandomAlias(ctx, simplelogin.RandomAliasParams{Note: "n"})
	require.NoError(t, err)
	require.NoError(t, c.SetAliasMailboxes(ctx, a.ID, []int64{mb.ID}))
	got, err := c.GetAlias(ctx, a.ID)
	require.NoError(t, err)
	assert.Equal(t, []simplelogin.MailboxRef{{ID: mb.ID, Email: "ada@example.com"}}, got.Mailboxes)

	require.NoError(t, c.DeleteMailboxIfExists(ctx, mb.ID))
	found, err := c.FindMailbox(ctx, "ada@example.com")
	require.NoError(t, err)
	assert.Nil(t, found)
}
