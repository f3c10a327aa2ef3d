package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
	"github.com/crmflow/crmflow/internal/store"
)

// clerkUser is a user.created or user.updated body as Clerk sends it:
// primary is the primary address, others are further verified addresses.
func clerkUser(typ, userID string, updatedAt int64, first, last, primary string, others ...string) []byte {
	addresses := fmt.Sprintf(`{"id":"idn_p","object":"email_address","email_address":%q,
 "verification":{"status":"verified","strategy":"email_code"},"linked_to":[]}`, primary)
	for i, o := range others {
		addresses += fmt.Sprintf(`,{"id":"idn_%d","object":"email_address","email_address":%q,
 "verification":{"status":"verified","strategy":"email_link"},"linked_to":[]}`, i, o)
	}
	return []byte(fmt.Sprintf(`{"type":%q,"object":"event","data":{"object":"user","id":%q,
 "first_name":%q,"last_name":%q,"username":null,"created_at":1785578000000,"updated_at":%d,
 "primary_email_address_id":"idn_p","email_addresses":[%s]}}`, typ, userID, first, last, updatedAt, addresses))
}

// deliverClerk posts a signed Clerk event and requires 200.
func (f *fixture) deliverClerk(msgID string, body []byte) map[string]any {
	f.t.Helper()
	status, resp := f.postClerk(body, signClerk(f.t, msgID, body, time.Now(), clerkSecret))
	require.Equal(f.t, http.StatusOK, status, "body: %v", resp)
	return resp
}

// createAlias starts an alias and waits until it is active at SimpleLogin;
// customerID "" makes a shadow alias for email.
func (f *fixture) createAlias(id, customerID, email string) *store.Alias {
	f.t.Helper()
	ctx := context.Background()
	_, err := f.starter.CreateAlias(ctx, contract.AliasLifecycleInput{AliasID: id, CustomerID: customerID, Email: email})
	require.NoError(f.t, err)
	var a *store.Alias
	require.Eventually(f.t, func() bool {
		a, err = f.store.GetAlias(ctx, id)
		return err == nil && a.State == store.AliasActive
	}, 30*time.Second, 100*time.Millisecond, "alias %s created", id)
	return a
}

// inboxStatus is where the Clerk event with Svix id msgID ended.
func (f *fixture) inboxStatus(msgID string) string {
	f.t.Helper()
	var status string
	err := f.store.Pool().QueryRow(context.Background(),
		`SELECT status FROM webhook_inbox WHERE provider = 'clerk' AND event_id = $1`, msgID).Scan(&status)
	require.NoError(f.t, err)
	return status
}

// TestUserLifecycleEndToEnd drives one Clerk user through signed webhooks:
// user.created → customer row (none existed), Knock identify, one welcome
// email, shadow alias of a secondary verified address claimed; user.updated
// with a new primary address → row and Knock follow, the aliases forward
// to the new address's SimpleLogin mailbox once SimpleLogin verified it, and
// a shadow alias made for the new address is claimed; user.deleted twice →
// Knock user deleted once, every alias (and an unclaimed shadow alias of
// one of the user's addresses) deleted once, the mailbox deleted, the row
// scrubbed; later events for the user are late.
func TestUserLifecycleEndToEnd(t *testing.T) {
	sl := newSimpleLoginPeer(t)
	f := newFixture(t, fixtureOptions{worker: true, simpleLoginURL: sl.srv.URL})
	ctx := context.Background()
	const user = "user_2ada"
	shadowWork := f.createAlias("al-u-work", "", "Ada@Work.example")

	// user.created, for a user with no customer row.
	f.deliverClerk("msg_u_created", clerkUser("user.created", user, 1000, "Ada", "Lovelace", "ada@example.com", "ada@work.example"))
	require.Eventually(t, func() bool {
		a, err := f.store.GetAlias(ctx, "al-u-work")
		return err == nil && a.CustomerID == user
	}, 30*time.Second, 100*time.Millisecond, "the shadow alias of a verified secondary address is claimed")
	c, err := f.store.GetCustomer(ctx, user)
	require.NoError(t, err, "the workflow created the customer row")
	assert.Equal(t, "ada@example.com", c.Email)
	assert.Equal(t, "Ada Lovelace", c.Name)
	assert.Equal(t, map[string]any{"email": "ada@example.com", "name": "Ada Lovelace"}, f.knock.identifies(user)[0])
	welcomes := f.emails.to("ada@example.com")
	require.Len(t, welcomes, 1, "one welcome email activity call")
	assert.Equal(t, "welcome", welcomes[0].Template)
	assert.Equal(t, map[string]any{"name": "Ada Lovelace"}, welcomes[0].Data)
	assert.Equal(t, "user/"+user+"/welcome", welcomes[0].IdempotencyKey)

	// user.updated: a new primary address.
	own := f.createAlias("al-u-own", user, "")
	shadowNew := f.createAlias("al-u-new", "", "ada@new.example")
	f.deliverClerk("msg_u_updated", clerkUser("user.updated", user, 2000, "Ada", "King", "ada@new.example", "ada@example.com"))
	require.Eventually(t, func() bool { return sl.mailboxOf("ada@new.example") != 0 }, 30*time.Second, 100*time.Millisecond,
		"a SimpleLogin mailbox for the new address")
	c, err = f.store.GetCustomer(ctx, user)
	require.NoError(t, err)
	assert.Equal(t, "ada@new.example", c.Email)
	assert.Equal(t, "Ada King", c.Name)
	mailbox := sl.mailboxOf("ada@new.example")
	for _, id := range []int64{own.SimpleLoginID, shadowWork.SimpleLoginID} {
		got, _ := sl.forwardsTo(id)
		assert.Empty(t, got, "nothing moves before SimpleLogin has verified the mailbox")
	}
	sl.verifyMailbox("ada@new.example") // the user follows SimpleLogin's link
	require.Eventually(t, func() bool {
		a, _ := sl.forwardsTo(own.SimpleLoginID)
		b, _ := sl.forwardsTo(shadowWork.SimpleLoginID)
		return fmt.Sprint(a) == fmt.Sprint([]int64{mailbox}) && fmt.Sprint(b) == fmt.Sprint([]int64{mailbox})
	}, 30*time.Second, 100*time.Millisecond, "the user's aliases forward to the new address")
	require.Eventually(t, func() bool {
		a, err := f.store.GetAlias(ctx, "al-u-new")
		return err == nil && a.CustomerID == user
	}, 30*time.Second, 100*time.Millisecond, "the shadow alias made for the new address is claimed")
	assert.Equal(t, "ada@new.example", f.knock.user(user)["email"])
	assert.Len(t, f.emails.to("ada@example.com"), 1, "an update welcomes nobody")

	// An unclaimed shadow alias made for one of the user's addresses after
	// the claims: the deletion finds it by the address.
	unclaimed := f.createAlias("al-u-late", "", "ada@example.com")

	deleted := clerkUserEvent("user.deleted", user, "")
	f.deliverClerk("msg_u_deleted", deleted)
	assert.Equal(t, true, f.deliverClerk("msg_u_deleted", deleted)["duplicate"], "Svix's retry of the same message")
	res := contract.UserLifecycleResult{}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.NoError(t, f.temporal.GetWorkflow(ctx, contract.UserID(user), "").Get(waitCtx, &res))
	assert.Equal(t, contract.UserDeleted, res.State)
	// The same deletion under another message id, then a created after it.
	f.deliverClerk("msg_u_deleted_again", deleted)
	f.deliverClerk("msg_u_created_late", clerkUser("user.created", user, 1000, "Ada", "Lovelace", "ada@example.com"))
	for _, msg := range []string{"msg_u_deleted_again", "msg_u_created_late"} {
		require.Eventually(t, func() bool { return f.inboxStatus(msg) == inbox.StatusLate }, 30*time.Second, 100*time.Millisecond,
			"%s reaches a deleted user: late", msg)
	}

	aliases := []*store.Alias{shadowWork, own, shadowNew, unclaimed}
	require.Eventually(t, func() bool {
		for _, a := range aliases {
			got, err := f.store.GetAlias(ctx, a.ID)
			if err != nil || got.State != store.AliasDeleted {
				return false
			}
		}
		return true
	}, time.Minute, 100*time.Millisecond, "every alias of the user deleted")
	dels := sl.deletions()
	for _, a := range aliases {
		assert.Equal(t, 1, dels[a.SimpleLoginID], "alias %s deleted once at SimpleLogin", a.ID)
	}
	assert.Equal(t, 1, f.knock.deletedUser(user), "Knock user deleted once")
	assert.Nil(t, f.knock.user(user))
	assert.Zero(t, sl.mailboxOf("ada@new.example"), "SimpleLogin keeps no mailbox of the deleted user")
	c, err = f.store.GetCustomer(ctx, user)
	require.NoError(t, err)
	assert.Equal(t, store.ScrubbedEmail, c.Email)
	assert.Equal(t, store.ScrubbedName, c.Name)
	assert.NotNil(t, c.DeletedAt, "the id stays, a tombstone")
	assert.Len(t, f.emails.to("ada@example.com"), 1, "the late created welcomed nobody")
	saveHistory(t, f.temporal, contract.UserID(user), "user_lifecycle_created_updated_deleted.json")
}

// TestLegacyClerkRowsStillReachTheUser: a row stored before UserLifecycle,
// with the old route (no event) and the old target, is handed to the
// user's entity, its event read again from the payload.
func TestLegacyClerkRowsStillReachTheUser(t *testing.T) {
	f := newFixture(t, fixtureOptions{worker: true})
	ctx := context.Background()
	const user = "user_legacy"
	body := clerkUser("user.created", user, 1000, "Lee", "Gacy", "lee@example.com")
	_, err := inbox.NewStore(f.store.Pool()).Insert(ctx, inbox.Event{
		Source: inbox.SourceClerk, EventID: "msg_legacy", EventType: "user.created", Payload: body,
		Target: "clerk-user/" + user,
		Route:  inbox.Route{Clerk: &inbox.ClerkRoute{Type: "user.created", UserID: user, PrimaryEmail: "lee@example.com"}},
	})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c, err := f.store.GetCustomer(ctx, user)
		return err == nil && c.Name == "Lee Gacy" && len(f.emails.to("lee@example.com")) == 1
	}, 30*time.Second, 100*time.Millisecond, "the legacy row's user was recorded and welcomed")
	assert.Equal(t, inbox.StatusDelivered, f.inboxStatus("msg_legacy"))
}
