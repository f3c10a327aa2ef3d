package inbox_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/inbox"
)

// A user.updated as Clerk sends it (clerk/javascript's UserJSON), trimmed to
// the fields crmflow reads plus a few it does not.
const clerkUpdated = `{"type":"user.updated","object":"event","timestamp":1785578400000,
 "data":{"object":"user","id":"user_2x","first_name":"Ada","last_name":" Lovelace ","username":null,
  "updated_at":1785578399000,"primary_email_address_id":"idn_2",
  "email_addresses":[
   {"id":"idn_1","object":"email_address","email_address":"ada@old.example","verification":{"status":"verified","strategy":"email_code"},"linked_to":[]},
   {"id":"idn_2","object":"email_address","email_address":" ada@new.example ","verification":{"status":"verified","strategy":"email_code"},"linked_to":[]},
   {"id":"idn_3","object":"email_address","email_address":"ada@unverified.example","verification":{"status":"unverified","strategy":"email_code"},"linked_to":[]},
   {"id":"idn_4","object":"email_address","email_address":"ada@none.example","verification":null,"linked_to":[]}]}}`

func TestClerkUserEventsGoToTheUsersEntity(t *testing.T) {
	row, err := inbox.ClerkEvent("msg_1", []byte(clerkUpdated))
	require.NoError(t, err)
	assert.Empty(t, row.Ignored)
	assert.Equal(t, "user/user_2x", row.Target, "one target per user: the entity's workflow ID")
	require.NotNil(t, row.Route.Clerk)
	assert.Equal(t, &contract.UserEvent{
		EventID: "msg_1", Type: contract.UserEventUpdated, UserID: "user_2x", UpdatedAt: 1785578399000,
		Name: "Ada Lovelace", PrimaryEmail: "ada@new.example",
		VerifiedEmails: []string{"ada@old.example", "ada@new.example"},
	}, row.Route.Clerk.Event, "only verified addresses may claim")

	row, err = inbox.ClerkEvent("msg_2", []byte(`{"type":"user.deleted","object":"event","data":{"object":"user","id":"user_2x","deleted":true}}`))
	require.NoError(t, err)
	assert.Equal(t, "user/user_2x", row.Target)
	assert.Equal(t, &contract.UserEvent{EventID: "msg_2", Type: contract.UserEventDeleted, UserID: "user_2x"}, row.Route.Clerk.Event)
}

func TestClerkEventsCrmflowDoesNotActOnAreIgnored(t *testing.T) {
	for body, reason := range map[string]string{
		`{"type":"session.created","data":{"id":"sess_1"}}`: "event type session.created is not handled",
		`{"type":"user.updated","data":{"id":"user 1/.."}}`: "event has no usable user id",
		`{"type":"user.created","data":{}}`:                 "event has no usable user id",
	} {
		row, err := inbox.ClerkEvent("msg_x", []byte(body))
		require.NoError(t, err, body)
		assert.Equal(t, reason, row.Ignored, body)
		assert.Empty(t, row.Target, body)
	}
	_, err := inbox.ClerkEvent("msg_x", []byte(`{"type":"user.updated","data":{"id":"u","updated_at":"soon"}}`))
	require.ErrorIs(t, err, inbox.ErrMalformed)
}
