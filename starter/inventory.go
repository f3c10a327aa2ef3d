package starter

import (
	"context"
	"fmt"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/workflows"
)

// SignalStockLevel hands a stock observation to the SKU's low-stock entity,
// starting it if needed. It implements activities.StockSignaller for the
// inventory scan; the dispatcher calls it for coalesced API updates.
func (s *Starter) SignalStockLevel(ctx context.Context, obs activities.StockObservation) error {
	if err := workflows.ValidateKey("SKU", obs.SKU); err != nil {
		return fmt.Errorf("%w: %w: %v", ErrInvalid, activities.ErrStockSignalRejected, err)
	}
	id := workflows.LowStockID(obs.SKU)
	opts := s.startOptions(id, workflows.SKUKey.ValueSet(obs.SKU))
	_, err := s.c.SignalWithStartWorkflow(ctx, id, workflows.StockLevelSignal,
		workflows.StockLevel{Level: obs.Level, ObservedAt: obs.ObservedAt, EventID: obs.EventID},
		opts, workflows.LowStockAlertType, workflows.LowStockInput{SKU: obs.SKU})
	if err != nil {
		return fmt.Errorf("signal stock level of %s: %w", obs.SKU, err)
	}
	return nil
}
