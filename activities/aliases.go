package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/store"
)

// AliasStoreActivities record email aliases in PostgreSQL for the alias
// lifecycle workflow. Every method is safe to retry: writing what is already
// there is a no-op.
type AliasStoreActivities struct {
	// Store is the CRM database (*store.Store in the worker).
	Store aliasStore
}

// aliasStore is what the alias lifecycle needs of the CRM database: one
// write per step of an alias's life, each returning the row as it now is.
type aliasStore interface {
	UpsertCreatingAlias(ctx context.Context, a store.Alias) (*store.Alias, error)
	MarkAliasActive(ctx context.Context, id string, simpleLoginID int64, aliasEmail string) (*store.Alias, error)
	SetAliasState(ctx context.Context, id, state string) (*store.Alias, error)
	ClaimAlias(ctx context.Context, id, customerID string) (*store.Alias, error)
	MarkAliasDeleted(ctx context.Context, id, state string) (*store.Alias, error)
}

var _ aliasStore = (*store.Store)(nil)

// AliasRecord is what the workflow keeps of an alias row. Once the alias is
// deleted or expired its owner and address are empty (the row is scrubbed).
type AliasRecord struct {
	ID            string `json:"ID"`
	CustomerID    string `json:"CustomerID"`
	SimpleLoginID int64  `json:"SimpleLoginID"`
	AliasEmail    string `json:"AliasEmail"`
	State         string `json:"State"`
	Shadow        bool   `json:"Shadow"`
}

// RecordAliasCreatingInput is an alias about to be created at SimpleLogin.
type RecordAliasCreatingInput struct {
	AliasID string `json:"AliasID"`
	// CustomerID is the owner; "" makes a shadow alias, which needs Email.
	CustomerID string `json:"CustomerID"`
	// Email is the address a shadow alias is made for, so that the owner's
	// sign-up can claim it.
	Email string `json:"Email"`
	// Mode is contract.AliasModeRandom or contract.AliasModeCustom.
	Mode string `json:"Mode"`
	// ExpiresAt is when an unclaimed shadow alias expires; zero for none.
	ExpiresAt time.Time `json:"ExpiresAt"`
}

// RecordAliasCreating records the alias as creating before SimpleLogin is
// asked, so an alias exists in the CRM from the start of its workflow. An
// alias id already deleted or expired is a permanent StoreConflict (ids are
// not reused); an unknown customer a permanent StoreNotFound.
func (a *AliasStoreActivities) RecordAliasCreating(ctx context.Context, in RecordAliasCreatingInput) (*AliasRecord, error) {
	switch {
	case in.AliasID == "":
		return nil, invalidStoreInput("alias id is empty")
	case in.Mode != contract.AliasModeRandom && in.Mode != contract.AliasModeCustom:
		return nil, invalidStoreInput(fmt.Sprintf("mode %q is neither %q nor %q", in.Mode, contract.AliasModeRandom, contract.AliasModeCustom))
	case in.CustomerID == "" && strings.TrimSpace(in.Email) == "":
		return nil, invalidStoreInput("a shadow alias (no customer id) needs the email it is made for")
	}
	row := store.Alias{ID: in.AliasID, CustomerID: in.CustomerID, Email: in.Email, Mode: in.Mode}
	if !in.ExpiresAt.IsZero() {
		at := in.ExpiresAt
		row.ExpiresAt = &at
	}
	got, err := a.Store.UpsertCreatingAlias(ctx, row)
	if err != nil {
		return nil, classifyStore(err)
	}
	return aliasRecord(got), nil
}

// MarkAliasActiveInput is the SimpleLogin alias created for AliasID.
type MarkAliasActiveInput struct {
	AliasID       string `json:"AliasID"`
	SimpleLoginID int64  `json:"SimpleLoginID"`
	AliasEmail    string `json:"AliasEmail"`
}

// MarkAliasActive records the created SimpleLogin alias and makes the alias
// active. A SimpleLogin alias another crmflow alias holds is a permanent
// StoreConflict: one of them would be deleted with the other.
func (a *AliasStoreActivities) MarkAliasActive(ctx context.Context, in MarkAliasActiveInput) (*AliasRecord, error) {
	if in.SimpleLoginID <= 0 || in.AliasEmail == "" {
		return nil, invalidStoreInput("the SimpleLogin alias id and address are required")
	}
	got, err := a.Store.MarkAliasActive(ctx, in.AliasID, in.SimpleLoginID, in.AliasEmail)
	if err != nil {
		return nil, classifyStore(err)
	}
	return aliasRecord(got), nil
}

// SetAliasStateInput is the live state an alias is in at SimpleLogin.
type SetAliasStateInput struct {
	AliasID string `json:"AliasID"`
	// State is store.AliasActive or store.AliasDisabled.
	State string `json:"State"`
}

// SetAliasState records that the alias was enabled (active) or disabled.
func (a *AliasStoreActivities) SetAliasState(ctx context.Context, in SetAliasStateInput) (*AliasRecord, error) {
	if in.State != store.AliasActive && in.State != store.AliasDisabled {
		return nil, invalidStoreInput(fmt.Sprintf("state %q is neither %q nor %q", in.State, store.AliasActive, store.AliasDisabled))
	}
	got, err := a.Store.SetAliasState(ctx, in.AliasID, in.State)
	if err != nil {
		return nil, classifyStore(err)
	}
	return aliasRecord(got), nil
}

// ClaimAliasInput gives an alias its customer.
type ClaimAliasInput struct {
	AliasID    string `json:"AliasID"`
	CustomerID string `json:"CustomerID"`
}

// ClaimAlias records the customer who claimed a shadow alias and cancels its
// expiry. An alias another customer owns is a permanent StoreConflict; an
// unknown customer a permanent StoreNotFound (the customer row must exist
// before the claim).
func (a *AliasStoreActivities) ClaimAlias(ctx context.Context, in ClaimAliasInput) (*AliasRecord, error) {
	if in.CustomerID == "" {
		return nil, invalidStoreInput("customer id is empty")
	}
	got, err := a.Store.ClaimAlias(ctx, in.AliasID, in.CustomerID)
	if err != nil {
		return nil, classifyStore(err)
	}
	return aliasRecord(got), nil
}

// MarkAliasDeletedInput ends an alias.
type MarkAliasDeletedInput struct {
	AliasID string `json:"AliasID"`
	// State is store.AliasDeleted or store.AliasExpired.
	State string `json:"State"`
}

// MarkAliasDeleted ends the alias as deleted or expired and scrubs its
// personal data (address, owner email, customer) from the row. An alias
// already ended keeps its first end state.
func (a *AliasStoreActivities) MarkAliasDeleted(ctx context.Context, in MarkAliasDeletedInput) (*AliasRecord, error) {
	if in.State != store.AliasDeleted && in.State != store.AliasExpired {
		return nil, invalidStoreInput(fmt.Sprintf("state %q is neither %q nor %q", in.State, store.AliasDeleted, store.AliasExpired))
	}
	got, err := a.Store.MarkAliasDeleted(ctx, in.AliasID, in.State)
	if err != nil {
		return nil, classifyStore(err)
	}
	return aliasRecord(got), nil
}

func aliasRecord(a *store.Alias) *AliasRecord {
	return &AliasRecord{ID: a.ID, CustomerID: a.CustomerID, SimpleLoginID: a.SimpleLoginID,
		AliasEmail: a.AliasEmail, State: a.State, Shadow: a.Shadow}
}

// invalidStoreInput is a permanent StoreInvalidRequest: the workflow sent
// something no retry can make valid.
func invalidStoreInput(msg string) error {
	return permanent(providerStore, ErrTypeInvalid, errors.New(msg))
}
