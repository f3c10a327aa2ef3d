package activities_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// runUserActivity runs one user store activity and decodes its output into
// out (nil for none).
func runUserActivity(t *testing.T, a *activities.UserStoreActivities, fn, in, out any) error {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(fn, in)
	if err != nil || out == nil {
		return err
	}
	require.NoError(t, val.Get(out))
	return nil
}

func TestUserStoreActivities(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	a := &activities.UserStoreActivities{Store: st}

	var up activities.UpsertUserOutput
	require.NoError(t, runUserActivity(t, a, a.UpsertUser, activities.UpsertUserInput{CustomerID: "user_1", Email: "ada@example.com", Name: "Ada"}, &up))
	assert.Equal(t, activities.UpsertUserOutput{}, up, "a new row")
	require.NoError(t, runUserActivity(t, a, a.UpsertUser, activities.UpsertUserInput{CustomerID: "user_1", Email: "ada@new.example", Name: "Ada"}, &up))
	assert.Equal(t, activities.UpsertUserOutput{PreviousEmail: "ada@example.com"}, up)
	require.NoError(t, runUserActivity(t, a, a.UpsertUser, activities.UpsertUserInput{CustomerID: "user_1", Email: "ada@example.com", Name: "Ada"}, &up))
	c, err := st.GetCustomer(ctx, "user_1")
	require.NoError(t, err)
	assert.Equal(t, "ada@example.com", c.Email)

	aliases := &activities.AliasStoreActivities{Store: st}
	for _, in := range []activities.RecordAliasCreatingInput{
		{AliasID: "al-own", CustomerID: "user_1", Mode: contract.AliasModeRandom},
		{AliasID: "al-shadow", Email: "ADA@old.example", Mode: contract.AliasModeRandom},
	} {
		_, err := runAliasActivity(t, aliases, aliases.RecordAliasCreating, in)
		require.NoError(t, err)
	}
	_, err = runAliasActivity(t, aliases, aliases.MarkAliasActive, activities.MarkAliasActiveInput{AliasID: "al-own", SimpleLoginID: 7, AliasEmail: "x@sl.test"})
	require.NoError(t, err)

	var ids activities.AliasIDsOutput
	require.NoError(t, runUserActivity(t, a, a.FindShadowAliases, activities.FindShadowAliasesInput{Emails: []string{"ada@old.example"}}, &ids))
	assert.Equal(t, []string{"al-shadow"}, ids.AliasIDs)
	require.NoError(t, runUserActivity(t, a, a.FindUserAliases, activities.FindUserAliasesInput{CustomerID: "user_1", Emails: []string{"ada@old.example"}}, &ids))
	assert.Equal(t, []string{"al-own", "al-shadow"}, ids.AliasIDs)
	var fw activities.ForwardableAliasesOutput
	require.NoError(t, runUserActivity(t, a, a.ForwardableAliases, activities.ForwardableAliasesInput{CustomerID: "user_1"}, &fw))
	assert.Equal(t, []int64{7}, fw.SimpleLoginIDs)

	require.NoError(t, runUserActivity(t, a, a.ScrubUser, activities.ScrubUserInput{CustomerID: "user_1"}, nil))
	c, err = st.GetCustomer(ctx, "user_1")
	require.NoError(t, err)
	assert.Equal(t, store.ScrubbedEmail, c.Email)
	assert.Equal(t, store.ScrubbedName, c.Name)
	require.NoError(t, runUserActivity(t, a, a.UpsertUser, activities.UpsertUserInput{CustomerID: "user_1", Email: "ada@example.com"}, &up))
	assert.True(t, up.Deleted, "a deleted user stays deleted")
}

func TestUserStoreActivitiesClassifyErrors(t *testing.T) {
	st := testenv.Store(t)
	a := &activities.UserStoreActivities{Store: st}
	err := runUserActivity(t, a, a.UpsertUser, activities.UpsertUserInput{CustomerID: " "}, nil)
	requirePermanent(t, err, "StoreInvalidRequest")
	err = runUserActivity(t, a, a.UpsertUser, activities.UpsertUserInput{CustomerID: "user_nul", Name: "Ada\x00"}, nil)
	requirePermanent(t, err, "StoreInvalidRequest")
}
