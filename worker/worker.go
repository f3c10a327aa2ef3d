// Package worker builds crmflow's Temporal client from config, registers the
// workflows and activities on the task queue, and runs them until shutdown.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/workflows"
)

// Dial connects to the Temporal frontend named in cfg. It fails when the
// frontend cannot be reached within ctx, so a misconfigured address is
// reported at start rather than on the first workflow.
//
// Every payload and failure message it writes is encrypted with the master
// key (internal/codec), so no secret reaches a workflow history in clear
// text; operators decode through the codec endpoint.
func Dial(ctx context.Context, cfg *config.Config, logger *slog.Logger, metrics client.MetricsHandler) (client.Client, error) {
	keys, err := Keyring(cfg)
	if err != nil {
		return nil, err
	}
	dc := codec.NewDataConverter(keys)
	c, err := client.DialContext(ctx, client.Options{
		HostPort:         cfg.Temporal.Address,
		Namespace:        cfg.Temporal.Namespace,
		Logger:           sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
		MetricsHandler:   metrics,
		DataConverter:    dc,
		FailureConverter: codec.NewFailureConverter(dc),
	})
	if err != nil {
		return nil, fmt.Errorf("dial temporal at %s: %w", cfg.Temporal.Address, err)
	}
	return c, nil
}

// Keyring is the master key and its predecessors from cfg.
func Keyring(cfg *config.Config) (*credentials.Keyring, error) {
	previous := make([]string, len(cfg.MasterKeyPrevious))
	for i, k := range cfg.MasterKeyPrevious {
		previous[i] = k.Reveal()
	}
	kr, err := credentials.NewKeyring(cfg.MasterKey.Reveal(), previous...)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return kr, nil
}

// Options configures Run.
type Options struct {
	// Activities are the activity structs with their injected clients.
	Activities Activities
	// TaskQueue defaults to workflows.TaskQueue; tests give each worker its own.
	TaskQueue string
	// StopTimeout bounds how long running activities get to finish on shutdown.
	StopTimeout time.Duration
}

// New builds the worker with every workflow and activity registered.
func New(c client.Client, opts Options) sdkworker.Worker {
	if opts.TaskQueue == "" {
		opts.TaskQueue = workflows.TaskQueue
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 10 * time.Second
	}
	w := sdkworker.New(c, opts.TaskQueue, sdkworker.Options{
		WorkerStopTimeout: opts.StopTimeout,
	})
	register(w, opts.Activities)
	return w
}

// register is the one place that lists what the worker runs.
func register(r sdkworker.Registry, a Activities) {
	r.RegisterWorkflowWithOptions(workflows.OrderConfirmation, workflow.RegisterOptions{Name: workflows.OrderConfirmationType})
	r.RegisterWorkflowWithOptions(workflows.ReferralReward, workflow.RegisterOptions{Name: workflows.ReferralRewardType})
	r.RegisterWorkflowWithOptions(workflows.LowStockAlert, workflow.RegisterOptions{Name: workflows.LowStockAlertType})
	r.RegisterWorkflowWithOptions(workflows.InventoryScan, workflow.RegisterOptions{Name: workflows.InventoryScanType})
	r.RegisterWorkflowWithOptions(workflows.AliasLifecycle, workflow.RegisterOptions{Name: workflows.AliasLifecycleType})
	r.RegisterWorkflowWithOptions(workflows.KeyRotation, workflow.RegisterOptions{Name: workflows.KeyRotationType})
	r.RegisterActivity(a.Orders)
	r.RegisterActivity(a.Referrals)
	r.RegisterActivity(a.Inventory)
	r.RegisterActivity(a.Aliases)
	r.RegisterActivity(a.SimpleLogin)
	r.RegisterActivity(a.Credentials)
	r.RegisterActivity(a.KeyVerifier)
	r.RegisterActivity(a.Resend)
	r.RegisterActivity(a.Stripe)
	r.RegisterActivity(a.Knock)
	r.RegisterActivity(a.DeadLetters)
}

// Run runs the worker until ctx is cancelled, then stops it gracefully.
func Run(ctx context.Context, c client.Client, opts Options) error {
	w := New(c, opts)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	<-ctx.Done()
	w.Stop()
	return nil
}

// RegisterSearchAttributes adds crmflow's search attributes to the namespace,
// skipping those already there, so it can run at every start.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	existing, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enums.IndexedValueType{}
	for name, typ := range workflows.SearchAttributes() {
		have, ok := existing.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case have != typ:
			return fmt.Errorf("search attribute %s exists with type %s, crmflow needs %s", name, have, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace:        namespace,
		SearchAttributes: missing,
	})
	var exists *serviceerror.AlreadyExists
	// Another replica may have added them since we listed: that is success.
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}
