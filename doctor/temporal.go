package doctor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/contract"
)

const temporalFix = "check temporal.address (CRMFLOW_TEMPORAL_ADDRESS) and that the Temporal frontend runs (`crmflow dev` starts one)"

// checkTemporal checks the frontend answers and the namespace exists, then,
// in that namespace, crmflow's search attributes and schedules. Without a
// namespace there is nothing more to check, so the last two are left out.
func (c *Checker) checkTemporal(ctx context.Context) []Result {
	cfg := c.Config
	addr, ns := cfg.Temporal.Address, cfg.Temporal.Namespace
	tctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	tc := c.Temporal
	if tc == nil {
		dialed, err := client.DialContext(tctx, client.Options{
			HostPort:  addr,
			Namespace: ns,
			// The results say what went wrong; the SDK's own log lines
			// would only repeat it.
			Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
		})
		if err != nil {
			return []Result{fail("temporal", fmt.Sprintf("cannot reach %s: %v", addr, err), temporalFix)}
		}
		defer dialed.Close()
		tc = dialed
	}
	desc, err := tc.WorkflowService().DescribeNamespace(tctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns})
	var notFound *serviceerror.NamespaceNotFound
	switch {
	case errors.As(err, &notFound):
		return []Result{fail("temporal", fmt.Sprintf("%s answers, but namespace %q does not exist", addr, ns),
			fmt.Sprintf("create it (`temporal operator namespace create --namespace %s`) or set temporal.namespace (CRMFLOW_TEMPORAL_NAMESPACE)", ns))}
	case err != nil:
		return []Result{fail("temporal", fmt.Sprintf("no answer from %s: %v", addr, err), temporalFix)}
	}
	if state := desc.GetNamespaceInfo().GetState(); state != enumspb.NAMESPACE_STATE_REGISTERED {
		return []Result{fail("temporal", fmt.Sprintf("namespace %q is %s", ns, state),
			"use a registered namespace: set temporal.namespace (CRMFLOW_TEMPORAL_NAMESPACE)")}
	}
	return []Result{
		pass("temporal", fmt.Sprintf("%s answers; namespace %q registered", addr, ns)),
		c.checkSearchAttributes(ctx, tc, ns),
		c.checkSchedules(ctx, tc),
	}
}

// checkSearchAttributes compares the namespace's custom search attributes
// with workflows.SearchAttributes.
func (c *Checker) checkSearchAttributes(ctx context.Context, tc client.Client, ns string) Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	have, err := tc.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		return fail("search-attributes", "cannot list them: "+err.Error(), temporalFix)
	}
	want := contract.SearchAttributes()
	var missing, wrong []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		got, ok := have.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing = append(missing, name)
		case got != want[name]:
			wrong = append(wrong, fmt.Sprintf("%s is %s, crmflow needs %s", name, got, want[name]))
		}
	}
	switch {
	case len(wrong) > 0:
		return fail("search-attributes", strings.Join(wrong, "; "),
			"remove and re-create them with the right type (`temporal operator search-attribute remove` / `create`), then run `crmflow migrate --temporal`")
	case len(missing) > 0:
		return fail("search-attributes", "missing in namespace "+ns+": "+strings.Join(missing, ", "),
			"run `crmflow migrate --temporal`")
	}
	return pass("search-attributes", fmt.Sprintf("all %d registered", len(want)))
}

// checkSchedules looks for every Schedule a worker creates at start.
func (c *Checker) checkSchedules(ctx context.Context, tc client.Client) Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	want := ExpectedSchedules(c.Config)
	var missing, paused []string
	for _, id := range want {
		desc, err := tc.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		var notFound *serviceerror.NotFound
		switch {
		case errors.As(err, &notFound):
			missing = append(missing, id)
		case err != nil:
			return fail("schedules", fmt.Sprintf("cannot describe %s: %v", id, err), temporalFix)
		case desc.Schedule.State.Paused:
			paused = append(paused, id)
		}
	}
	if len(missing) > 0 {
		return fail("schedules", "missing: "+strings.Join(missing, ", "),
			"start a worker (`crmflow worker` or `crmflow dev`): it creates them at start")
	}
	detail := fmt.Sprintf("all %d present", len(want))
	if len(paused) > 0 {
		// An operator may pause a schedule on purpose: worth saying, not a
		// failure.
		detail += "; paused: " + strings.Join(paused, ", ")
	}
	return pass("schedules", detail)
}

// ExpectedSchedules lists the Schedule IDs a worker creates at start for
// cfg: inventory-scan, data-retention, stripe-reconcile when Stripe has a
// key and stripe.reconcile_every is not 0, and key-rotation-<provider> for
// crmflow's own token and every provider with a configured key. It mirrors
// worker.EnsureSchedules.
func ExpectedSchedules(cfg *config.Config) []string {
	ids := []string{contract.InventoryScanScheduleID, contract.DataRetentionScheduleID}
	if cfg.ReconcilesStripe() {
		ids = append(ids, contract.StripeReconcileScheduleID)
	}
	for _, provider := range cfg.RotatedProviders() {
		ids = append(ids, contract.KeyRotationScheduleID(provider))
	}
	return ids
}
