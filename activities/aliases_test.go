package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// runAliasActivity runs one alias store activity in a test environment.
func runAliasActivity(t *testing.T, a *activities.AliasStoreActivities, fn, in any) (*activities.AliasRecord, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(fn, in)
	if err != nil {
		return nil, err
	}
	var rec activities.AliasRecord
	require.NoError(t, val.Get(&rec))
	return &rec, nil
}

// requirePermanent checks err is a non-retryable error of errType.
func requirePermanent(t *testing.T, err error, errType string) {
	t.Helper()
	appErr := requireAppError(t, err)
	assert.Equal(t, errType, appErr.Type())
	assert.True(t, appErr.NonRetryable(), "%s should not be retried", errType)
}

func TestShadowAliasLifecycleInStore(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	a := &activities.AliasStoreActivities{Store: st}
	expires := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

	rec, err := runAliasActivity(t, a, a.RecordAliasCreating, activities.RecordAliasCreatingInput{
		AliasID: "al-1", Email: "Pre@Example.com", Mode: contract.AliasModeRandom, ExpiresAt: expires})
	require.NoError(t, err)
	assert.Equal(t, activities.AliasRecord{ID: "al-1", State: store.AliasCreating, Shadow: true}, *rec)
	row, err := st.GetAlias(ctx, "al-1")
	require.NoError(t, err)
	require.NotNil(t, row.ExpiresAt)
	assert.True(t, row.ExpiresAt.Equal(expires))

	rec, err = runAliasActivity(t, a, a.MarkAliasActive, activities.MarkAliasActiveInput{
		AliasID: "al-1", SimpleLoginID: 42, AliasEmail: "random.x@alias.example"})
	require.NoError(t, err)
	assert.Equal(t, store.AliasActive, rec.State)
	assert.Equal(t, int64(42), rec.SimpleLoginID)

	ids, err := st.ShadowAliasesForEmail(ctx, "pre@example.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"al-1"}, ids)

	require.NoError(t, st.UpsertCustomer(ctx, store.Customer{ID: "cus-1", Email: "pre@example.com"}))
	rec, err = runAliasActivity(t, a, a.ClaimAlias, activities.ClaimAliasInput{AliasID: "al-1", CustomerID: "cus-1"})
	require.NoError(t, err)
	assert.Equal(t, "cus-1", rec.CustomerID)

	rec, err = runAliasActivity(t, a, a.SetAliasState, activities.SetAliasStateInput{AliasID: "al-1", State: store.AliasDisabled})
	require.NoError(t, err)
	assert.Equal(t, store.AliasDisabled, rec.State)

	rec, err = runAliasActivity(t, a, a.MarkAliasDeleted, activities.MarkAliasDeletedInput{AliasID: "al-1", State: store.AliasDeleted})
	require.NoError(t, err)
	assert.Equal(t, activities.AliasRecord{ID: "al-1", SimpleLoginID: 42, State: store.AliasDeleted, Shadow: true}, *rec,
		"no owner and no address left")
	ids, err = st.AliasesOfCustomer(ctx, "cus-1")
	require.NoError(t, err)
	assert.Empty(t, ids)
}

func TestAliasStoreErrorsAreClassified(t *testing.T) {
	st := testenv.Store(t)
	a := &activities.AliasStoreActivities{Store: st}
	ctx := context.Background()
	require.NoError(t, st.UpsertCustomer(ctx, store.Customer{ID: "cus-1", Email: "one@example.com"}))
	require.NoError(t, st.UpsertCustomer(ctx, store.Customer{ID: "cus-2", Email: "two@example.com"}))

	_, err := runAliasActivity(t, a, a.RecordAliasCreating, activities.RecordAliasCreatingInput{
		AliasID: "al-x", CustomerID: "cus-unknown", Mode: contract.AliasModeRandom})
	requirePermanent(t, err, "StoreNotFound")

	_, err = runAliasActivity(t, a, a.RecordAliasCreating, activities.RecordAliasCreatingInput{
		AliasID: "al-x", Mode: contract.AliasModeRandom})
	requirePermanent(t, err, "StoreInvalidRequest")

	_, err = runAliasActivity(t, a, a.RecordAliasCreating, activities.RecordAliasCreatingInput{
		AliasID: "al-1", CustomerID: "cus-1", Mode: contract.AliasModeCustom})
	require.NoError(t, err)
	_, err = runAliasActivity(t, a, a.ClaimAlias, activities.ClaimAliasInput{AliasID: "al-1", CustomerID: "cus-2"})
	requirePermanent(t, err, "StoreConflict")

	_, err = runAliasActivity(t, a, a.SetAliasState, activities.SetAliasStateInput{AliasID: "al-1", State: store.AliasDeleted})
	requirePermanent(t, err, "StoreInvalidRequest")

	_, err = runAliasActivity(t, a, a.MarkAliasDeleted, activities.MarkAliasDeletedInput{AliasID: "al-missing", State: store.AliasExpired})
	requirePermanent(t, err, "StoreNotFound")
}
