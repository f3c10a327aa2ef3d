package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/starter"
)

// deliverClerk fans a Clerk user event out to the alias workflows it
// concerns: user.created claims the shadow aliases made for the user's
// email; user.deleted deletes every alias of the user (privacy). Aliases
// whose workflow has ended are skipped. A partial failure retries the whole
// row; the workflows ignore the event id they have already seen.
func (d *Dispatcher) deliverClerk(ctx context.Context, eventID string, payload []byte) error {
	var ev clerkEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return &permanentError{fmt.Errorf("decode clerk event %s: %w", eventID, err)}
	}
	var aliasIDs []string
	var signal string
	var err error
	switch ev.Type {
	case clerkUserCreated:
		email := ev.primaryEmail()
		if email == "" {
			return nil // nothing to claim by
		}
		signal = contract.AliasClaimSignal
		aliasIDs, err = d.store.ShadowAliasesForEmail(ctx, email)
	case clerkUserDeleted:
		signal = contract.AliasDeleteSignal
		aliasIDs, err = d.store.AliasesOfCustomer(ctx, ev.Data.ID)
	default:
		return &permanentError{fmt.Errorf("no route for clerk event type %s", ev.Type)}
	}
	if err != nil {
		return err
	}
	for _, id := range aliasIDs {
		err := d.starter.SignalAlias(ctx, id, signal, contract.AliasCommand{EventID: eventID, CustomerID: ev.Data.ID})
		if err != nil && !errors.Is(err, starter.ErrNotFound) {
			return err
		}
	}
	return nil
}
