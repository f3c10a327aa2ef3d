package activities

import (
	"context"
	"errors"
	"strings"

	"github.com/crmflow/crmflow/internal/store"
)

// UserStoreActivities keep a Clerk user's customer row in PostgreSQL and
// find the aliases their lifecycle acts on, for the UserLifecycle workflow.
// Every method is safe to retry: writing what is already there is a no-op,
// and the reads change nothing.
type UserStoreActivities struct {
	// Store is the CRM database (*store.Store in the worker).
	Store userStore
}

// userStore is what the user lifecycle needs of the CRM database.
type userStore interface {
	GetCustomer(ctx context.Context, id string) (*store.Customer, error)
	UpsertUser(ctx context.Context, id, email, name string) (*store.Customer, error)
	ScrubCustomer(ctx context.Context, id string) (*store.Customer, error)
	ShadowAliasesForEmails(ctx context.Context, emails []string) ([]string, error)
	AliasesOfUser(ctx context.Context, customerID string, emails []string) ([]string, error)
	ForwardableAliases(ctx context.Context, customerID string) ([]store.Alias, error)
}

var _ userStore = (*store.Store)(nil)

// UpsertUserInput is a Clerk user's data for their customer row.
type UpsertUserInput struct {
	// CustomerID is the Clerk user id.
	CustomerID string `json:"customer_id"`
	// Email is the primary address, "" when the user has none.
	Email string `json:"email"`
	// Name is the display name, "" when Clerk has none.
	Name string `json:"name"`
}

// UpsertUserOutput says what the row is now.
type UpsertUserOutput struct {
	// Deleted is true when the row is a tombstone: the user was deleted
	// before, and nothing was written.
	Deleted bool `json:"deleted"`
	// PreviousEmail is the address the row had before, "" for a new row:
	// how a user's first event tells that their primary address changed.
	PreviousEmail string `json:"previous_email,omitempty"`
}

// UpsertUser creates or updates the user's customer row (email and name
// only: the Stripe customer and the referral are the CRM's). A tombstone is
// left alone and reported as Deleted, so a user.created arriving after the
// user's deletion cannot bring them back.
func (a *UserStoreActivities) UpsertUser(ctx context.Context, in UpsertUserInput) (*UpsertUserOutput, error) {
	if strings.TrimSpace(in.CustomerID) == "" {
		return nil, invalidStoreInput("customer id is empty")
	}
	var previous string
	switch old, err := a.Store.GetCustomer(ctx, in.CustomerID); {
	case err == nil && !old.IsTombstone():
		previous = old.Email
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return nil, classifyUserStore(err)
	}
	c, err := a.Store.UpsertUser(ctx, in.CustomerID, in.Email, in.Name)
	if err != nil {
		return nil, classifyUserStore(err)
	}
	return &UpsertUserOutput{Deleted: c.IsTombstone(), PreviousEmail: previous}, nil
}

// ScrubUserInput names the deleted user.
type ScrubUserInput struct {
	CustomerID string `json:"customer_id"`
}

// ScrubUser makes the user's customer row a tombstone: email and name
// become store.ScrubbedEmail and store.ScrubbedName, deleted_at is set, the
// id (and what orders and rewards need) stays. A user without a row gets a
// tombstone row.
func (a *UserStoreActivities) ScrubUser(ctx context.Context, in ScrubUserInput) error {
	if strings.TrimSpace(in.CustomerID) == "" {
		return invalidStoreInput("customer id is empty")
	}
	if _, err := a.Store.ScrubCustomer(ctx, in.CustomerID); err != nil {
		return classifyUserStore(err)
	}
	return nil
}

// FindShadowAliasesInput are the addresses a user has proved they own.
type FindShadowAliasesInput struct {
	Emails []string `json:"emails"`
}

// AliasIDsOutput are crmflow alias ids, in id order.
type AliasIDsOutput struct {
	AliasIDs []string `json:"alias_ids"`
}

// FindShadowAliases returns the live, unclaimed shadow aliases made for any
// of the addresses: the ones the user may claim.
func (a *UserStoreActivities) FindShadowAliases(ctx context.Context, in FindShadowAliasesInput) (*AliasIDsOutput, error) {
	ids, err := a.Store.ShadowAliasesForEmails(ctx, in.Emails)
	if err != nil {
		return nil, classifyUserStore(err)
	}
	return &AliasIDsOutput{AliasIDs: ids}, nil
}

// FindUserAliasesInput is a user being deleted and every address known
// to be theirs.
type FindUserAliasesInput struct {
	CustomerID string   `json:"customer_id"`
	Emails     []string `json:"emails"`
}

// FindUserAliases returns every live alias a deletion of the user must
// delete: their own, and the unclaimed shadow aliases made for any of
// their addresses (those given and the one on their customer row).
func (a *UserStoreActivities) FindUserAliases(ctx context.Context, in FindUserAliasesInput) (*AliasIDsOutput, error) {
	if strings.TrimSpace(in.CustomerID) == "" {
		return nil, invalidStoreInput("customer id is empty")
	}
	ids, err := a.Store.AliasesOfUser(ctx, in.CustomerID, in.Emails)
	if err != nil {
		return nil, classifyUserStore(err)
	}
	return &AliasIDsOutput{AliasIDs: ids}, nil
}

// ForwardableAliasesInput names the user whose aliases follow their address.
type ForwardableAliasesInput struct {
	CustomerID string `json:"customer_id"`
}

// ForwardableAliasesOutput are SimpleLogin alias ids, in crmflow id order.
type ForwardableAliasesOutput struct {
	SimpleLoginIDs []int64 `json:"simplelogin_ids"`
}

// ForwardableAliases returns the SimpleLogin ids of the user's created,
// live aliases (active or disabled): the ones whose mailbox follows the
// user's primary address.
func (a *UserStoreActivities) ForwardableAliases(ctx context.Context, in ForwardableAliasesInput) (*ForwardableAliasesOutput, error) {
	if strings.TrimSpace(in.CustomerID) == "" {
		return nil, invalidStoreInput("customer id is empty")
	}
	aliases, err := a.Store.ForwardableAliases(ctx, in.CustomerID)
	if err != nil {
		return nil, classifyUserStore(err)
	}
	out := &ForwardableAliasesOutput{SimpleLoginIDs: make([]int64, 0, len(aliases))}
	for _, al := range aliases {
		out.SimpleLoginIDs = append(out.SimpleLoginIDs, al.SimpleLoginID)
	}
	return out, nil
}

// classifyUserStore is classifyStore, plus a value PostgreSQL refuses
// itself (a NUL in a name Clerk sent): no retry can store it, so it is a
// permanent StoreInvalidRequest rather than an hour of retries.
func classifyUserStore(err error) error {
	if store.IsDataException(err) {
		return permanent(providerStore, ErrTypeInvalid, err)
	}
	return classifyStore(err)
}
