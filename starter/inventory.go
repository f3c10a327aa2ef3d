package starter

import (
	"context"
	"fmt"

	"github.com/crmflow/crmflow/contract"
)

// SignalStockLevel hands a stock level to the SKU's low-stock entity,
// starting it if needed. It implements activities.StockSignaller for the
// inventory scan; the dispatcher calls it for coalesced API updates. A SKU
// that makes no valid workflow ID is refused with an error that is both
// ErrInvalid and contract.ErrInvalidKey.
func (s *Starter) SignalStockLevel(ctx context.Context, sku string, level contract.StockLevel) error {
	if err := contract.ValidateKey("SKU", sku); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	id := contract.LowStockID(sku)
	opts := s.startOptions(id, contract.SKUKey.ValueSet(sku))
	_, err := s.c.SignalWithStartWorkflow(ctx, id, contract.StockLevelSignal, level,
		opts, contract.LowStockAlertType, contract.LowStockInput{SKU: sku})
	if err != nil {
		return fmt.Errorf("signal stock level of %s: %w", sku, err)
	}
	return nil
}
