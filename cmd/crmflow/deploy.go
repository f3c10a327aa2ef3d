package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/worker"
)

// newDeployCmd is Worker Versioning for operators: which builds of the
// worker Temporal knows, which one gets new runs, and making a new one
// current. The rollout procedure is in docs/operations.md.
func newDeployCmd(g *globals) *cobra.Command {
	deploy := &cobra.Command{
		Use:   "deploy",
		Short: "Worker Versioning: the builds of the crmflow Worker Deployment and which one is current",
	}
	var name string
	deploy.PersistentFlags().StringVar(&name, "deployment", contract.DeploymentName, "Worker Deployment name")

	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "List the deployment's builds: current, ramping, draining (Pinned runs still open) or drained",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := g.connect(cmd.Context(), true, false)
			if err != nil {
				return err
			}
			defer env.Close()
			d, err := worker.DescribeDeployment(cmd.Context(), env.temporal, name)
			if errors.Is(err, worker.ErrNoDeployment) {
				fmt.Fprintf(cmd.OutOrStdout(), "Worker Deployment %s has no builds yet: no versioned worker has polled "+
					"(crmflow dev runs its worker unversioned).\n", name)
				return nil
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), d)
			}
			return printDeployment(cmd.OutOrStdout(), d)
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var ramp float32
	var unversioned bool
	promote := &cobra.Command{
		Use:   "promote <buildID>",
		Short: "Make a build current: new runs and AutoUpgrade runs go to it, Pinned runs finish where they started",
		Long: `Make a build the deployment's current version. New runs, and the next task of
every AutoUpgrade run (the long-lived entities), go to it; Pinned runs (the
bounded workflows) finish on the build they started on, so keep the old
build's workers running until "crmflow deploy status" shows it drained.

Its workers must be polling every task queue first (crmflow worker does at
start). Promoting the previous build again is the rollback, while its
workers still run.

--ramp P sends P % of that traffic to the build instead (0 ends the ramp);
--unversioned hands everything back to unversioned workers.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if unversioned {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			buildID := ""
			if !unversioned {
				buildID = args[0]
			}
			rampSet := cmd.Flags().Changed("ramp")
			if rampSet && (ramp < 0 || ramp > 100 || unversioned) {
				return fmt.Errorf("--ramp takes a build and a percentage from 0 to 100")
			}
			env, err := g.connect(cmd.Context(), true, false)
			if err != nil {
				return err
			}
			defer env.Close()
			out := cmd.OutOrStdout()
			if rampSet {
				if err := worker.Ramp(cmd.Context(), env.temporal, name, buildID, ramp); err != nil {
					return err
				}
				if ramp == 0 {
					fmt.Fprintf(out, "No build is ramping in deployment %s.\n", name)
					return nil
				}
				fmt.Fprintf(out, "Build %s gets %g%% of new runs and AutoUpgrade tasks in deployment %s; "+
					"`crmflow deploy promote %s` completes the rollout, --ramp 0 ends it.\n", buildID, ramp, name, buildID)
				return nil
			}
			previous, err := worker.Promote(cmd.Context(), env.temporal, name, buildID)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Current in deployment %s: %s (was %s).\n", name, buildLabel(buildID), buildLabel(previous))
			if previous != "" && previous != buildID {
				fmt.Fprintf(out, "Runs pinned to %s finish there: keep its workers until `crmflow deploy status` shows it drained.\n", previous)
			}
			return nil
		},
	}
	promote.Flags().Float32Var(&ramp, "ramp", 0, "send this percentage of new runs and AutoUpgrade tasks to the build instead of making it current")
	promote.Flags().BoolVar(&unversioned, "unversioned", false, "make unversioned workers current again (leaving Worker Versioning)")
	deploy.AddCommand(status, promote)
	return deploy
}

// printDeployment prints the routing, then one line per build, oldest first.
func printDeployment(w io.Writer, d *worker.Deployment) error {
	fmt.Fprintf(w, "Worker Deployment %s\n", d.Name)
	since := ""
	if !d.CurrentSince.IsZero() && d.CurrentSince.Unix() > 0 {
		since = " since " + d.CurrentSince.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "  current  %s%s\n", buildLabel(d.Current), since)
	if d.Ramping != "" {
		fmt.Fprintf(w, "  ramping  %s at %g%%\n", d.Ramping, d.RampPercent)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BUILD ID\tSTATE\tCREATED\tTASK QUEUES")
	draining := false
	for _, v := range d.Versions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.BuildID, v.State, v.Created.UTC().Format(time.RFC3339), strings.Join(v.TaskQueues, ","))
		draining = draining || v.State == worker.StateDraining
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("print deployment: %w", err)
	}
	if draining {
		// Temporal re-checks a draining build's open runs every few minutes.
		fmt.Fprintln(w, "\nDraining builds may still have Pinned runs open: keep their workers running until they show drained.")
	}
	return nil
}

// buildLabel names a build id, or the unversioned workers for "".
func buildLabel(buildID string) string {
	if buildID == "" {
		return "unversioned workers"
	}
	return "build " + buildID
}
