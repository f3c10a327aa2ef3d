package e2e_test

// UserLifecycle's other branches end to end, each driven by signed Clerk
// deliveries through the webhook, the inbox and the dispatcher, each ending
// in saveHistory so that workflows/replay_test.go replays the branch. They
// run through the sealing client, so their histories hold payloads sealed as
// production writes them.

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/store"
)

// userStatus is the user's entity's answer to the status query, through
// the API.
func (f *fixture) userStatus(userID string) map[string]any {
	f.t.Helper()
	status, body := f.api(http.MethodGet, "/v1/workflows/"+contract.UserID(userID), apiToken, nil)
	require.Equal(f.t, http.StatusOK, status, body)
	st, _ := body["status"].(map[string]any)
	return st
}

// waitUserName waits until Knock holds name for the user: the marker that
// the entity has handled every event delivered before the one that set it.
func (f *fixture) waitUserName(userID, name string) {
	f.t.Helper()
	require.Eventually(f.t, func() bool {
		u := f.knock.user(userID)
		return u != nil && u["name"] == name
	}, 30*time.Second, 100*time.Millisecond, "Knock holds %q for %s", name, userID)
}

// TestUserUpdatedBeforeCreatedEndToEnd: the CRM wrote the customer row
// first; Svix delivers user.updated before the older user.created. The
// newer snapshot wins in the row and at Knock, the user is welcomed once
// with it, and a user.created redelivered under another message id
// welcomes nobody again.
func TestUserUpdatedBeforeCreatedEndToEnd(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	ctx := context.Background()
	const user = "user_2bea"
	require.NoError(t, f.store.UpsertCustomer(ctx, store.Customer{ID: user, Email: "bea@crm.example", Name: "B."}))

	f.deliverClerk("msg_b_updated", clerkUser("user.updated", user, 2000, "Bea", "Newer", "bea@example.com"))
	f.deliverClerk("msg_b_created", clerkUser("user.created", user, 1000, "Bea", "Older", "bea@example.com"))
	require.Eventually(t, func() bool { return len(f.emails.to("bea@example.com")) == 1 }, 30*time.Second,
		100*time.Millisecond, "the created welcomed the user")
	welcome := f.emails.to("bea@example.com")[0]
	assert.Equal(t, map[string]any{"name": "Bea Newer"}, welcome.Data, "the newer snapshot's name")
	c, err := f.store.GetCustomer(ctx, user)
	require.NoError(t, err)
	assert.Equal(t, "bea@example.com", c.Email)
	assert.Equal(t, "Bea Newer", c.Name, "the older created did not overwrite the newer update")
	assert.Equal(t, "Bea Newer", f.knock.user(user)["name"])
	assert.Len(t, f.knock.identifies(user), 1, "the older snapshot was not sent to Knock")

	f.deliverClerk("msg_b_created_again", clerkUser("user.created", user, 1000, "Bea", "Older", "bea@example.com"))
	f.deliverClerk("msg_b_renamed", clerkUser("user.updated", user, 3000, "Bea", "Newest", "bea@example.com"))
	f.waitUserName(user, "Bea Newest")
	assert.Len(t, f.emails.to("bea@example.com"), 1, "a second created welcomed nobody again")
	st := f.userStatus(user)
	assert.Equal(t, contract.UserActive, st["state"])
	assert.Equal(t, "await-event", st["step"])
	saveHistory(t, f.temporal, contract.UserID(user), "user_lifecycle_updated_before_created.json")
}

// TestUserKnockRefusalParksThenRetryEndToEnd: Knock refuses the key at the
// identify; the step parks with a dead letter, the welcome waits; an
// operator retries it and the user is identified, welcomed once and given
// their shadow alias.
func TestUserKnockRefusalParksThenRetryEndToEnd(t *testing.T) {
	sl := newSimpleLoginPeer(t)
	f := newSealedFixture(t, fixtureOptions{simpleLoginURL: sl.srv.URL})
	ctx := context.Background()
	const user = "user_2cai"
	f.knock.failIdentify = 1
	f.createAlias("al-c-shadow", "", "cai@example.com")

	f.deliverClerk("msg_c_created", clerkUser("user.created", user, 1000, "Cai", "Park", "cai@example.com"))
	dl := f.parkedDeadLetter("identify-user")
	assert.Equal(t, true, f.userStatus(user)["parked"])
	assert.Empty(t, f.emails.to("cai@example.com"), "nothing is sent while the identify is parked")
	c, err := f.store.GetCustomer(ctx, user)
	require.NoError(t, err, "the row was written before the parked step")
	assert.Equal(t, "Cai Park", c.Name)

	f.decide(dl, "retry")
	require.Eventually(t, func() bool {
		a, err := f.store.GetAlias(ctx, "al-c-shadow")
		return err == nil && a.CustomerID == user
	}, 30*time.Second, 100*time.Millisecond, "the claim follows the retried identify")
	assert.Equal(t, "Cai Park", f.knock.user(user)["name"])
	assert.Len(t, f.emails.to("cai@example.com"), 1)
	got, err := f.store.GetDeadLetter(ctx, dl)
	require.NoError(t, err)
	assert.Equal(t, store.DeadLetterResolved, got.Status)
	require.Eventually(t, func() bool { return f.userStatus(user)["step"] == "await-event" }, 30*time.Second, 100*time.Millisecond)
	saveHistory(t, f.temporal, contract.UserID(user), "user_lifecycle_parked_retried.json")
}

// TestUserWelcomeRefusedParksThenSkipEndToEnd: Resend refuses the welcome
// email (422); the step parks, an operator skips it, and the entity goes on
// to claim the user's shadow alias. A later update does not try the welcome
// again.
func TestUserWelcomeRefusedParksThenSkipEndToEnd(t *testing.T) {
	sl := newSimpleLoginPeer(t)
	f := newSealedFixture(t, fixtureOptions{simpleLoginURL: sl.srv.URL})
	ctx := context.Background()
	const user = "user_2dee"
	f.emails.refuseTo("dee@example.com")
	f.createAlias("al-d-shadow", "", "dee@example.com")

	f.deliverClerk("msg_d_created", clerkUser("user.created", user, 1000, "Dee", "Bounce", "dee@example.com"))
	dl := f.parkedDeadLetter("send-welcome")
	a, err := f.store.GetAlias(ctx, "al-d-shadow")
	require.NoError(t, err)
	assert.Empty(t, a.CustomerID, "the claim waits for the welcome step's decision")
	f.decide(dl, "skip")
	require.Eventually(t, func() bool {
		a, err := f.store.GetAlias(ctx, "al-d-shadow")
		return err == nil && a.CustomerID == user
	}, 30*time.Second, 100*time.Millisecond, "the claim follows the skipped welcome")

	f.deliverClerk("msg_d_renamed", clerkUser("user.updated", user, 2000, "Dee", "Renamed", "dee@example.com"))
	f.waitUserName(user, "Dee Renamed")
	assert.Len(t, f.emails.to("dee@example.com"), 1, "the one refused attempt; the skip is final")
	got, err := f.store.GetDeadLetter(ctx, dl)
	require.NoError(t, err)
	assert.Equal(t, store.DeadLetterSkipped, got.Status)
	saveHistory(t, f.temporal, contract.UserID(user), "user_lifecycle_welcome_skipped.json")
}

// TestUserMailboxEndToEnd: the user's new primary address already has a
// verified SimpleLogin mailbox, so their aliases move at once; the next new
// address's mailbox is never verified, so the entity gives up and the
// aliases stay where they were.
func TestUserMailboxEndToEnd(t *testing.T) {
	sl := newSimpleLoginPeer(t)
	f := newSealedFixture(t, fixtureOptions{simpleLoginURL: sl.srv.URL, mailboxVerifyWait: 2 * time.Second})
	const user = "user_2eve"
	f.deliverClerk("msg_e_created", clerkUser("user.created", user, 1000, "Eve", "Moves", "eve@example.com"))
	f.waitUserName(user, "Eve Moves")
	own := f.createAlias("al-e-own", user, "")
	verified := sl.addMailbox("eve@verified.example", true)

	f.deliverClerk("msg_e_moved", clerkUser("user.updated", user, 2000, "Eve", "Moves", "eve@verified.example", "eve@example.com"))
	require.Eventually(t, func() bool {
		got, _ := sl.forwardsTo(own.SimpleLoginID)
		return fmt.Sprint(got) == fmt.Sprint([]int64{verified})
	}, 30*time.Second, 100*time.Millisecond, "the aliases move to the verified mailbox at once")

	f.deliverClerk("msg_e_moved_again", clerkUser("user.updated", user, 3000, "Eve", "Again", "eve@unverified.example", "eve@verified.example"))
	require.Eventually(t, func() bool { return sl.mailboxOf("eve@unverified.example") != 0 }, 30*time.Second, 100*time.Millisecond)
	require.Eventually(t, func() bool {
		d, _ := f.userStatus(user)["detail"].(string)
		return d == "the new address's mailbox was never verified at SimpleLogin; the aliases forward where they did"
	}, 30*time.Second, 100*time.Millisecond, "the entity gives up on the unverified mailbox")
	got, _ := sl.forwardsTo(own.SimpleLoginID)
	assert.Equal(t, []int64{verified}, got, "the aliases stay on the mailbox they had")
	assert.Equal(t, "Eve Again", f.knock.user(user)["name"])
	saveHistory(t, f.temporal, contract.UserID(user), "user_lifecycle_mailbox_verified_then_given_up.json")
}

// TestUserDeletedFirstEndToEnd: a user.deleted is the first event crmflow
// sees of a user (the created was lost, or the user predates crmflow). Knock
// never knew the user (404, counted as deleted), the row becomes a
// tombstone, the run ends; the created arriving after it ends late.
func TestUserDeletedFirstEndToEnd(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	ctx := context.Background()
	const user = "user_2fay"
	f.deliverClerk("msg_f_deleted", clerkUserEvent("user.deleted", user, ""))
	var res contract.UserLifecycleResult
	require.NoError(t, f.result(contract.UserID(user), &res))
	assert.Equal(t, contract.UserDeleted, res.State)
	c, err := f.store.GetCustomer(ctx, user)
	require.NoError(t, err)
	assert.True(t, c.IsTombstone(), "a tombstone keeps a later created from making the row")
	assert.Zero(t, f.knock.deletedUser(user))

	f.deliverClerk("msg_f_created", clerkUser("user.created", user, 1000, "Fay", "Late", "fay@example.com"))
	require.Eventually(t, func() bool { return f.inboxStatus("msg_f_created") == inbox.StatusLate }, 30*time.Second, 100*time.Millisecond)
	assert.Nil(t, f.knock.user(user))
	assert.Empty(t, f.emails.to("fay@example.com"))
	saveHistory(t, f.temporal, contract.UserID(user), "user_lifecycle_deleted_first.json")
}

// TestUserCreatedFindsTombstoneEndToEnd: the user was deleted long ago (the
// run's history is past Temporal's retention, its row a tombstone) and a
// user.created for them arrives: a new run finds the tombstone and ends at
// once, writing nothing, identifying nobody, welcoming nobody.
func TestUserCreatedFindsTombstoneEndToEnd(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	ctx := context.Background()
	const user = "user_2gus"
	_, err := f.store.ScrubCustomer(ctx, user)
	require.NoError(t, err)

	f.deliverClerk("msg_g_created", clerkUser("user.created", user, 1000, "Gus", "Gone", "gus@example.com"))
	var res contract.UserLifecycleResult
	require.NoError(t, f.result(contract.UserID(user), &res))
	assert.Equal(t, contract.UserDeleted, res.State)
	c, err := f.store.GetCustomer(ctx, user)
	require.NoError(t, err)
	assert.Equal(t, store.ScrubbedEmail, c.Email)
	assert.Nil(t, f.knock.user(user))
	assert.Empty(t, f.knock.identifies(user))
	assert.Empty(t, f.emails.to("gus@example.com"))
	saveHistory(t, f.temporal, contract.UserID(user), "user_lifecycle_created_after_tombstone.json")
}

// TestUserContinuesAsNewEndToEnd: a user's entity with a small history
// bound continues as new; the next run carries the user (a rename after it
// is synced, the welcome is not sent again) and later events reach it.
func TestUserContinuesAsNewEndToEnd(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	ctx := context.Background()
	const user = "user_2hal"
	id := contract.UserID(user)
	// The entity is started as the starter does, with the bound turned down.
	first, err := f.temporal.SignalWithStartWorkflow(ctx, id, contract.UserEventSignal,
		contract.UserEvent{EventID: "direct_h_created", Type: contract.UserEventCreated, UserID: user, UpdatedAt: 1000,
			Name: "Hal Long", PrimaryEmail: "hal@example.com", VerifiedEmails: []string{"hal@example.com"}},
		client.StartWorkflowOptions{ID: id, TaskQueue: f.queue}, contract.UserLifecycleType,
		contract.UserLifecycleInput{UserID: user, MaxHistoryEvents: 40})
	require.NoError(t, err)
	f.waitUserName(user, "Hal Long")
	for i := 1; ; i++ {
		name := fmt.Sprintf("Hal %d", i)
		f.deliverClerk(fmt.Sprintf("msg_h_%d", i), clerkUser("user.updated", user, int64(1000+i), "Hal", fmt.Sprint(i), "hal@example.com"))
		f.waitUserName(user, name)
		d, err := f.temporal.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		if d.GetWorkflowExecutionInfo().GetExecution().GetRunId() != first.GetRunID() {
			break
		}
		require.Less(t, i, 20, "the run never continued as new")
	}
	f.deliverClerk("msg_h_last", clerkUser("user.updated", user, 5000, "Hal", "Last", "hal@example.com"))
	f.waitUserName(user, "Hal Last")
	assert.Len(t, f.emails.to("hal@example.com"), 1, "the next run carried the welcome")
	saveRunHistory(t, f.temporal, id, first.GetRunID(), "user_lifecycle_continued_as_new.json")
}

// TestUserContinuesAsNewWhileParkedEndToEnd: Knock refuses the identify of
// a new user and the step parks; Clerk events keep coming and the run's
// history reaches its bound, so it continues as new with the dead letter;
// the operator's retry reaches the next run, which handles the created
// again (identify, one welcome) and then the updates that waited.
func TestUserContinuesAsNewWhileParkedEndToEnd(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	ctx := context.Background()
	const user = "user_2ivy"
	id := contract.UserID(user)
	f.knock.failIdentify = 1
	first, err := f.temporal.SignalWithStartWorkflow(ctx, id, contract.UserEventSignal,
		contract.UserEvent{EventID: "direct_i_created", Type: contract.UserEventCreated, UserID: user, UpdatedAt: 1000,
			Name: "Ivy Park", PrimaryEmail: "ivy@example.com", VerifiedEmails: []string{"ivy@example.com"}},
		client.StartWorkflowOptions{ID: id, TaskQueue: f.queue}, contract.UserLifecycleType,
		contract.UserLifecycleInput{UserID: user, MaxHistoryEvents: 40})
	require.NoError(t, err)
	dl := f.parkedDeadLetter("identify-user")

	last, second := "", ""
	for i := 1; ; i++ {
		msg := fmt.Sprintf("msg_i_%d", i)
		f.deliverClerk(msg, clerkUser("user.updated", user, int64(1000+i), "Ivy", fmt.Sprint(i), "ivy@example.com"))
		require.Eventually(t, func() bool { return f.inboxStatus(msg) == inbox.StatusDelivered }, 30*time.Second, 100*time.Millisecond)
		last = fmt.Sprintf("Ivy %d", i)
		d, err := f.temporal.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err)
		if second = d.GetWorkflowExecutionInfo().GetExecution().GetRunId(); second != first.GetRunID() {
			break
		}
		require.Less(t, i, 40, "the parked run never continued as new")
	}
	require.Eventually(t, func() bool {
		st := f.userStatus(user)
		return st["parked"] == true && st["step"] == "identify-user"
	}, 30*time.Second, 100*time.Millisecond, "the next run waits on the same dead letter")
	assert.Nil(t, f.knock.user(user), "nothing reached Knock while parked")
	assert.Empty(t, f.emails.to("ivy@example.com"))

	f.decide(dl, "retry")
	f.waitUserName(user, last)
	assert.Len(t, f.emails.to("ivy@example.com"), 1, "welcomed once, after the retry")
	got, err := f.store.GetDeadLetter(ctx, dl)
	require.NoError(t, err)
	assert.Equal(t, store.DeadLetterResolved, got.Status)
	require.Eventually(t, func() bool { return f.userStatus(user)["step"] == "await-event" }, 30*time.Second, 100*time.Millisecond)
	saveRunHistory(t, f.temporal, id, first.GetRunID(), "user_lifecycle_parked_continued_as_new.json")
	// The run that took the dead letter over (it may have continued as new
	// again since, handling the updates that waited).
	saveRunHistory(t, f.temporal, id, second, "user_lifecycle_parked_resumed_retried.json")
}
