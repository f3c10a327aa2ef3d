package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// TestEmailSuppressionsCommands: `crmflow email suppressions list|remove`
// against a database, as the API's routes: the list shows each address
// with its reason; a removal lets the address get email again and is
// audited under the operator's name; removing an address that is not
// suppressed, or something that is no address, fails and removes nothing.
func TestEmailSuppressionsCommands(t *testing.T) {
	clearOperatorEnv(t)
	dbURL := testenv.DatabaseURL(t)
	t.Setenv("CRMFLOW_DATABASE_URL", dbURL)
	t.Setenv("CRMFLOW_MASTER_KEY", testenv.MasterKey)
	// Outside dev, an operator command needs the deployment's start-API token.
	t.Setenv("CRMFLOW_API_TOKENS", "test-token")
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Suppress(ctx, store.Suppression{Address: "ada@example.com", Reason: store.SuppressedBounce,
		Detail: "Permanent/General: no such mailbox", EmailID: "em_1", EventID: "msg_1"}))
	require.NoError(t, st.Suppress(ctx, store.Suppression{Address: "bob@example.com", Reason: store.SuppressedComplaint}))

	out, err := crmflowOperator(t, "", "email", "suppressions", "list")
	require.NoError(t, err, out)
	assert.Regexp(t, `(?m)^ada@example.com +bounce +\S+ \S+ +Permanent/General: no such mailbox$`, out)
	assert.Regexp(t, `(?m)^bob@example.com +complaint `, out)

	_, err = crmflowOperator(t, "", "email", "suppressions", "remove", "not-an-address")
	assert.ErrorContains(t, err, "is not an email address")
	_, err = crmflowOperator(t, "", "email", "suppressions", "remove", "carol@example.com")
	assert.ErrorIs(t, err, store.ErrNotFound)

	out, err = crmflowOperator(t, "", "email", "suppressions", "remove", "Ada@Example.com", "--operator", "alice")
	require.NoError(t, err, out)
	assert.Contains(t, out, "removed ada@example.com (suppressed after a bounce)")
	_, err = st.GetSuppression(ctx, "ada@example.com")
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = st.GetSuppression(ctx, "bob@example.com")
	assert.NoError(t, err, "only the named address is removed")
	var audited int
	require.NoError(t, st.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE actor = 'alice'
		AND action = 'email_suppression.remove' AND subject = 'email-suppression/ada@example.com'`).Scan(&audited))
	assert.Equal(t, 1, audited)

	out, err = crmflowOperator(t, "", "email", "suppressions", "list")
	require.NoError(t, err, out)
	assert.NotContains(t, out, "ada@example.com")
}
