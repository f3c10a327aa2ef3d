package store_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/store"
)

func TestUpsertUserCreatesUpdatesAndKeepsTheRest(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	id := uniqueID(t, "user")

	c, err := db.UpsertUser(ctx, id, " ada@example.com ", "Ada")
	require.NoError(t, err)
	require.Equal(t, "ada@example.com", c.Email)
	require.Equal(t, "Ada", c.Name)
	require.False(t, c.IsTombstone())

	// A seeded Stripe customer and referral survive the user's updates.
	require.NoError(t, db.UpsertCustomer(ctx, store.Customer{ID: id, Email: c.Email, Name: c.Name, StripeCustomerID: "cus_" + id}))
	c, err = db.UpsertUser(ctx, id, "ada@new.example", "Ada L.")
	require.NoError(t, err)
	require.Equal(t, "ada@new.example", c.Email)
	require.Equal(t, "Ada L.", c.Name)
	require.Equal(t, "cus_"+id, c.StripeCustomerID)

	again, err := db.UpsertUser(ctx, id, "ada@new.example", "Ada L.")
	require.NoError(t, err)
	require.Equal(t, c, again, "writing the same again is a no-op")
}

func TestScrubCustomerLeavesATombstoneThatStaysDeleted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	id := uniqueID(t, "user")
	_, err := db.UpsertUser(ctx, id, "gone@example.com", "Gone")
	require.NoError(t, err)
	require.NoError(t, db.InsertOrder(ctx, store.Order{ID: uniqueID(t, "o"), CustomerID: id, AmountCents: 100, Currency: "eur"}))

	c, err := db.ScrubCustomer(ctx, id)
	require.NoError(t, err)
	require.True(t, c.IsTombstone())
	require.Equal(t, store.ScrubbedEmail, c.Email)
	require.Equal(t, store.ScrubbedName, c.Name)
	first := *c.DeletedAt

	again, err := db.ScrubCustomer(ctx, id)
	require.NoError(t, err)
	require.Equal(t, first, *again.DeletedAt, "scrubbing again keeps the first deletion time")

	// A user.created after the deletion changes nothing.
	c, err = db.UpsertUser(ctx, id, "gone@example.com", "Gone")
	require.NoError(t, err)
	require.True(t, c.IsTombstone())
	require.Equal(t, store.ScrubbedEmail, c.Email)

	// The table refuses personal data on a tombstone, whatever the code path.
	_, err = db.Pool().Exec(ctx, `UPDATE customers SET email = 'back@example.com' WHERE id = $1`, id)
	requirePgError(t, err, "23514", "customers_deleted_scrubbed")
}

func TestScrubCustomerOfAnUnknownUserLeavesATombstone(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	id := uniqueID(t, "user")
	c, err := db.ScrubCustomer(ctx, id)
	require.NoError(t, err)
	require.True(t, c.IsTombstone(), "deleted before it was ever created: the created that follows finds the tombstone")
	c, err = db.UpsertUser(ctx, id, "late@example.com", "Late")
	require.NoError(t, err)
	require.True(t, c.IsTombstone())
}

func TestAliasesOfUserFindOwnedAndShadowAliases(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	id := uniqueID(t, "user")
	rowEmail := strings.ToLower(id) + "@row.example"
	_, err := db.UpsertUser(ctx, id, rowEmail, "U")
	require.NoError(t, err)
	owned := seedAlias(t, id, "")
	forRow := seedAlias(t, "", strings.ToUpper(rowEmail))
	forOther := seedAlias(t, "", id+"@second.example")
	seedAlias(t, "", id+"@unrelated.example") // another address: never found
	ended := seedAlias(t, id, "")
	_, err = db.MarkAliasDeleted(ctx, ended.ID, store.AliasDeleted)
	require.NoError(t, err)

	ids, err := db.AliasesOfUser(ctx, id, []string{" " + strings.ToUpper(id) + "@SECOND.example", ""})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{owned.ID, forRow.ID, forOther.ID}, ids)

	shadows, err := db.ShadowAliasesForEmails(ctx, []string{id + "@second.example", rowEmail})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{forRow.ID, forOther.ID}, shadows)
	none, err := db.ShadowAliasesForEmails(ctx, []string{" "})
	require.NoError(t, err)
	require.Empty(t, none)

	fw, err := db.ForwardableAliases(ctx, id)
	require.NoError(t, err)
	require.Len(t, fw, 1)
	require.Equal(t, owned.SimpleLoginID, fw[0].SimpleLoginID)
}
