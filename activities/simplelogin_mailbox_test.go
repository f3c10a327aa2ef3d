package activities_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/activities"
)

func runEnsureMailbox(t *testing.T, f *fakeSimpleLogin, email string) (*activities.MailboxOutput, error) {
	t.Helper()
	env, a := slEnv(f.client())
	val, err := env.ExecuteActivity(a.EnsureMailbox, activities.EnsureMailboxInput{Email: email})
	if err != nil {
		return nil, err
	}
	var out activities.MailboxOutput
	require.NoError(t, val.Get(&out))
	return &out, nil
}

func runForwardAliases(t *testing.T, f *fakeSimpleLogin, in activities.ForwardAliasesInput) (*activities.ForwardAliasesOutput, error) {
	t.Helper()
	env, a := slEnv(f.client())
	val, err := env.ExecuteActivity(a.ForwardAliases, in)
	if err != nil {
		return nil, err
	}
	var out activities.ForwardAliasesOutput
	require.NoError(t, val.Get(&out))
	return &out, nil
}

func TestEnsureMailboxCreatesOnceAndWaitsForVerification(t *testing.T) {
	f := newFakeSimpleLogin(t)
	mb, err := runEnsureMailbox(t, f, "Ada@New.example")
	require.NoError(t, err)
	assert.False(t, mb.Verified, "SimpleLogin verifies a new mailbox through its owner")
	again, err := runEnsureMailbox(t, f, "ada@new.example")
	require.NoError(t, err)
	assert.Equal(t, mb.MailboxID, again.MailboxID, "a retry finds the mailbox, not a second one")
	assert.Equal(t, 1, f.count("POST /api/mailboxes"))

	f.verify("ada@new.example")
	mb, err = runEnsureMailbox(t, f, "ada@new.example")
	require.NoError(t, err)
	assert.True(t, mb.Verified)
}

func TestEnsureMailboxRefusedByAnotherAccount(t *testing.T) {
	f := newFakeSimpleLogin(t)
	f.failNext("POST /api/mailboxes", slCanned{status: 400, body: `{"error":"taken@example.com already used"}`})
	_, err := runEnsureMailbox(t, f, "taken@example.com")
	requirePermanent(t, err, "SimpleLoginNotFound")
	assert.Contains(t, err.Error(), "already used")
}

func TestForwardAliasesMovesEveryAliasAndSkipsGoneOnes(t *testing.T) {
	f := newFakeSimpleLogin(t)
	f.add(41, "a@sl.test", true, "crmflow:alias/a1")
	f.add(42, "b@sl.test", false, "crmflow:alias/a2")
	out, err := runForwardAliases(t, f, activities.ForwardAliasesInput{SimpleLoginIDs: []int64{41, 42, 43}, MailboxID: 4})
	require.NoError(t, err)
	assert.Equal(t, []int64{41, 42}, out.Forwarded)
	assert.Equal(t, []int64{43}, out.Gone, "deleted meanwhile: its own workflow ends it")
	assert.Equal(t, []int64{4}, f.forwardsTo(41))
	assert.Equal(t, []int64{4}, f.forwardsTo(42))

	// Again: the same state, nothing new.
	out, err = runForwardAliases(t, f, activities.ForwardAliasesInput{SimpleLoginIDs: []int64{41}, MailboxID: 4})
	require.NoError(t, err)
	assert.Equal(t, []int64{41}, out.Forwarded)
}

func TestForwardAliasesToAnUnverifiedMailboxParks(t *testing.T) {
	f := newFakeSimpleLogin(t)
	f.add(41, "a@sl.test", true, "n")
	_, err := runForwardAliases(t, f, activities.ForwardAliasesInput{SimpleLoginIDs: []int64{41}, MailboxID: 3})
	requirePermanent(t, err, "SimpleLoginInvalidRequest")
	assert.Empty(t, f.forwardsTo(41))
}

func TestDeleteMailboxesKeepsTheDefaultAndToleratesGoneOnes(t *testing.T) {
	f := newFakeSimpleLogin(t)
	env, a := slEnv(f.client())
	val, err := env.ExecuteActivity(a.DeleteMailboxes, activities.DeleteMailboxesInput{MailboxIDs: []int64{4, 5, 77}})
	require.NoError(t, err)
	var out activities.DeleteMailboxesOutput
	require.NoError(t, val.Get(&out))
	assert.Equal(t, []int64{4, 77}, out.Deleted)
	assert.Equal(t, []int64{5}, out.Kept, "the account's default mailbox is crmflow's own")
	assert.Equal(t, 1, f.count("DELETE /api/mailboxes/{id}"))
}
