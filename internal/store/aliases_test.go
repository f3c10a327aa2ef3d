package store_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
)

// seedAlias records a creating alias and makes it active at a unique
// SimpleLogin id; customerID "" makes a shadow alias for email.
func seedAlias(t *testing.T, customerID, email string) *store.Alias {
	t.Helper()
	ctx := t.Context()
	a := store.Alias{ID: uniqueID(t, "al"), CustomerID: customerID, Email: email, Mode: "random"}
	if customerID == "" {
		exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
		a.ExpiresAt = &exp
	}
	_, err := db.UpsertCreatingAlias(ctx, a)
	require.NoError(t, err)
	got, err := db.MarkAliasActive(ctx, a.ID, seq.Add(1), a.ID+"@alias.example")
	require.NoError(t, err)
	return got
}

func TestAliasCreateAndActivate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := seedCustomer(t)
	id := uniqueID(t, "al")

	a, err := db.UpsertCreatingAlias(ctx, store.Alias{ID: id, CustomerID: customer, Mode: "custom"})
	require.NoError(t, err)
	require.Equal(t, store.AliasCreating, a.State)
	require.Equal(t, customer, a.CustomerID)
	require.False(t, a.Shadow)
	require.Nil(t, a.ExpiresAt)
	require.Zero(t, a.SimpleLoginID)

	// A retried activity records it again: nothing changes.
	again, err := db.UpsertCreatingAlias(ctx, store.Alias{ID: id, CustomerID: customer, Mode: "custom"})
	require.NoError(t, err)
	require.Equal(t, a, again)

	slID := seq.Add(1)
	active, err := db.MarkAliasActive(ctx, id, slID, "shop.x1@alias.example")
	require.NoError(t, err)
	require.Equal(t, store.AliasActive, active.State)
	require.Equal(t, slID, active.SimpleLoginID)
	require.Equal(t, "shop.x1@alias.example", active.AliasEmail)

	// Retried activation is a no-op, even once disabled meanwhile.
	_, err = db.SetAliasState(ctx, id, store.AliasDisabled)
	require.NoError(t, err)
	retried, err := db.MarkAliasActive(ctx, id, slID, "shop.x1@alias.example")
	require.NoError(t, err)
	require.Equal(t, store.AliasDisabled, retried.State)

	// Another SimpleLogin alias for the same row is refused.
	_, err = db.MarkAliasActive(ctx, id, seq.Add(1), "other@alias.example")
	require.ErrorIs(t, err, store.ErrConflict)

	// Recording a live alias as creating again leaves it live.
	live, err := db.UpsertCreatingAlias(ctx, store.Alias{ID: id, CustomerID: customer, Mode: "custom"})
	require.NoError(t, err)
	require.Equal(t, store.AliasDisabled, live.State)
}

func TestAliasCreateRejects(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	_, err := db.UpsertCreatingAlias(ctx, store.Alias{ID: uniqueID(t, "al"), CustomerID: uniqueID(t, "nobody"), Mode: "random"})
	require.ErrorIs(t, err, store.ErrNotFound, "unknown customer")

	_, err = db.UpsertCreatingAlias(ctx, store.Alias{ID: uniqueID(t, "al"), Mode: "random"})
	require.Error(t, err, "a shadow alias needs an email")

	// Two aliases cannot hold the same SimpleLogin alias.
	first := seedAlias(t, seedCustomer(t), "")
	id := uniqueID(t, "al")
	_, err = db.UpsertCreatingAlias(ctx, store.Alias{ID: id, CustomerID: seedCustomer(t), Mode: "random"})
	require.NoError(t, err)
	_, err = db.MarkAliasActive(ctx, id, first.SimpleLoginID, "fresh@alias.example")
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = db.MarkAliasActive(ctx, id, seq.Add(1), first.AliasEmail)
	require.ErrorIs(t, err, store.ErrConflict)
}

func TestSetAliasState(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	a := seedAlias(t, seedCustomer(t), "")

	off, err := db.SetAliasState(ctx, a.ID, store.AliasDisabled)
	require.NoError(t, err)
	require.Equal(t, store.AliasDisabled, off.State)
	again, err := db.SetAliasState(ctx, a.ID, store.AliasDisabled)
	require.NoError(t, err)
	require.Equal(t, off.UpdatedAt, again.UpdatedAt, "a repeat writes nothing")
	on, err := db.SetAliasState(ctx, a.ID, store.AliasActive)
	require.NoError(t, err)
	require.Equal(t, store.AliasActive, on.State)

	_, err = db.SetAliasState(ctx, a.ID, store.AliasDeleted)
	require.Error(t, err, "deleting is MarkAliasDeleted's job")

	creating := uniqueID(t, "al")
	_, err = db.UpsertCreatingAlias(ctx, store.Alias{ID: creating, CustomerID: seedCustomer(t), Mode: "random"})
	require.NoError(t, err)
	_, err = db.SetAliasState(ctx, creating, store.AliasDisabled)
	require.ErrorIs(t, err, store.ErrConflict)

	_, err = db.SetAliasState(ctx, uniqueID(t, "missing"), store.AliasActive)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestClaimShadowAlias(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	email := strings.ToLower(uniqueID(t, "pre")) + "@example.com"
	a := seedAlias(t, "", email)
	require.True(t, a.Shadow)
	require.NotNil(t, a.ExpiresAt)

	ids, err := db.ShadowAliasesForEmail(ctx, "  "+strings.ToUpper(email)+" ")
	require.NoError(t, err)
	require.Equal(t, []string{a.ID}, ids, "found case-insensitively")

	customer := seedCustomer(t)
	claimed, err := db.ClaimAlias(ctx, a.ID, customer)
	require.NoError(t, err)
	require.Equal(t, customer, claimed.CustomerID)
	require.Nil(t, claimed.ExpiresAt, "a claim cancels the expiry")
	require.True(t, claimed.Shadow, "still a record of how it began")

	again, err := db.ClaimAlias(ctx, a.ID, customer)
	require.NoError(t, err)
	require.Equal(t, claimed.UpdatedAt, again.UpdatedAt, "a repeat writes nothing")

	_, err = db.ClaimAlias(ctx, a.ID, seedCustomer(t))
	require.ErrorIs(t, err, store.ErrConflict, "owned by someone else")

	ids, err = db.ShadowAliasesForEmail(ctx, email)
	require.NoError(t, err)
	require.Empty(t, ids, "claimed aliases are no longer shadows to claim")
	ids, err = db.AliasesOfCustomer(ctx, customer)
	require.NoError(t, err)
	require.Equal(t, []string{a.ID}, ids)

	_, err = db.ClaimAlias(ctx, seedAlias(t, "", email).ID, uniqueID(t, "nobody"))
	require.ErrorIs(t, err, store.ErrNotFound, "unknown customer")
	_, err = db.ClaimAlias(ctx, uniqueID(t, "missing"), customer)
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestMarkAliasDeletedScrubs(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	customer := seedCustomer(t)
	a := seedAlias(t, customer, "")
	other := seedAlias(t, customer, "")

	deleted, err := db.MarkAliasDeleted(ctx, a.ID, store.AliasDeleted)
	require.NoError(t, err)
	require.Equal(t, store.Alias{
		ID: a.ID, SimpleLoginID: a.SimpleLoginID, Mode: "random", State: store.AliasDeleted,
		CreatedAt: a.CreatedAt, UpdatedAt: deleted.UpdatedAt,
	}, *deleted, "only what the audit needs is left")

	// A retry, or a late expiry, keeps the first end.
	again, err := db.MarkAliasDeleted(ctx, a.ID, store.AliasExpired)
	require.NoError(t, err)
	require.Equal(t, deleted, again)

	ids, err := db.AliasesOfCustomer(ctx, customer)
	require.NoError(t, err)
	require.Equal(t, []string{other.ID}, ids)

	_, err = db.ClaimAlias(ctx, a.ID, customer)
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = db.SetAliasState(ctx, a.ID, store.AliasActive)
	require.ErrorIs(t, err, store.ErrConflict)
	_, err = db.UpsertCreatingAlias(ctx, store.Alias{ID: a.ID, CustomerID: customer, Mode: "random"})
	require.ErrorIs(t, err, store.ErrConflict, "alias ids are not reused")

	// The customer can be erased: no ended alias points at them.
	_, err = db.Pool().Exec(ctx, `DELETE FROM aliases WHERE id = $1`, other.ID)
	require.NoError(t, err)
	_, err = db.Pool().Exec(ctx, `DELETE FROM customers WHERE id = $1`, customer)
	require.NoError(t, err)

	_, err = db.MarkAliasDeleted(ctx, uniqueID(t, "missing"), store.AliasDeleted)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = db.MarkAliasDeleted(ctx, other.ID, store.AliasDisabled)
	require.Error(t, err)
}

func TestExpiredShadowAliasIsScrubbed(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	email := strings.ToLower(uniqueID(t, "pre")) + "@example.com"
	a := seedAlias(t, "", email)

	expired, err := db.MarkAliasDeleted(ctx, a.ID, store.AliasExpired)
	require.NoError(t, err)
	require.Equal(t, store.AliasExpired, expired.State)
	require.Empty(t, expired.Email)
	require.Empty(t, expired.AliasEmail)
	require.Nil(t, expired.ExpiresAt)
	ids, err := db.ShadowAliasesForEmail(ctx, email)
	require.NoError(t, err)
	require.Empty(t, ids)
}

func TestEndedAliasMustBeScrubbed(t *testing.T) {
	t.Parallel()
	a := seedAlias(t, seedCustomer(t), "")
	_, err := db.Pool().Exec(t.Context(), `UPDATE aliases SET state = 'deleted' WHERE id = $1`, a.ID)
	requirePgError(t, err, "23514", "aliases_ended_scrubbed")
}
