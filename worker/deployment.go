package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
)

// Deployment is what an operator needs to know about the Worker Deployment
// before and after a rollout: which build gets new runs, which is ramping,
// and which old builds still have Pinned runs to finish.
type Deployment struct {
	// Name is the Worker Deployment's name (contract.DeploymentName).
	Name string `json:"name"`
	// Current is the build id new runs and every AutoUpgrade run go to; ""
	// means unversioned workers.
	Current string `json:"current"`
	// CurrentSince is when Current was last chosen; zero if never.
	CurrentSince time.Time `json:"current_since,omitzero"`
	// Ramping is the build id receiving RampPercent of that traffic, if any.
	Ramping string `json:"ramping,omitempty"`
	// RampPercent is the share of new runs and AutoUpgrade tasks Ramping gets.
	RampPercent float32 `json:"ramp_percent,omitempty"`
	// Versions are the builds the deployment knows, oldest first.
	Versions []Version `json:"versions"`
}

// Version is one build of the deployment.
type Version struct {
	// BuildID is the build's `crmflow version`.
	BuildID string `json:"build_id"`
	// State is current, ramping, draining (Pinned runs still open: keep its
	// workers), drained (none: its workers can go) or inactive (never
	// current, or not yet checked).
	State string `json:"state"`
	// Created is when its first worker polled.
	Created time.Time `json:"created"`
	// TaskQueues are the queues its workers poll; a build can only become
	// current once it polls every queue the current one does.
	TaskQueues []string `json:"task_queues"`
}

// Version states, as Deployment reports them.
const (
	StateCurrent  = "current"
	StateRamping  = "ramping"
	StateDraining = "draining"
	StateDrained  = "drained"
	StateInactive = "inactive"
)

// ErrNoDeployment is returned by DescribeDeployment when no versioned
// worker of the deployment has polled yet.
var ErrNoDeployment = errors.New("no versioned worker of this deployment has polled Temporal yet")

// DescribeDeployment reads the deployment's routing and each version's
// state and task queues.
func DescribeDeployment(ctx context.Context, c client.Client, name string) (*Deployment, error) {
	h := c.WorkerDeploymentClient().GetHandle(name)
	d, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		if _, ok := errors.AsType[*serviceerror.NotFound](err); ok {
			return nil, fmt.Errorf("deployment %s: %w", name, ErrNoDeployment)
		}
		return nil, fmt.Errorf("describe deployment %s: %w", name, err)
	}
	rc := d.Info.RoutingConfig
	out := &Deployment{Name: name, Current: buildOf(rc.CurrentVersion), CurrentSince: rc.CurrentVersionChangedTime,
		Ramping: buildOf(rc.RampingVersion), RampPercent: rc.RampingVersionPercentage}
	for _, s := range d.Info.VersionSummaries {
		v := Version{BuildID: s.Version.BuildID, Created: s.CreateTime, State: StateInactive}
		switch {
		case v.BuildID == out.Current:
			v.State = StateCurrent
		case v.BuildID == out.Ramping:
			v.State = StateRamping
		case s.DrainageStatus == client.WorkerDeploymentVersionDrainageStatusDraining:
			v.State = StateDraining
		case s.DrainageStatus == client.WorkerDeploymentVersionDrainageStatusDrained:
			v.State = StateDrained
		}
		desc, err := h.DescribeVersion(ctx, client.WorkerDeploymentDescribeVersionOptions{BuildID: v.BuildID})
		if err != nil {
			return nil, fmt.Errorf("describe build %s of deployment %s: %w", v.BuildID, name, err)
		}
		for _, q := range desc.Info.TaskQueuesInfos {
			if !slices.Contains(v.TaskQueues, q.Name) {
				v.TaskQueues = append(v.TaskQueues, q.Name)
			}
		}
		slices.Sort(v.TaskQueues)
		out.Versions = append(out.Versions, v)
	}
	slices.SortFunc(out.Versions, func(a, b Version) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// Promote makes buildID the deployment's current version: new runs and the
// next task of every AutoUpgrade run go to it, while Pinned runs finish on
// the build they started on. "" makes unversioned workers current again.
// Temporal refuses a build none of whose workers has polled, or whose
// workers do not poll every task queue the current build's do. It returns
// the build that was current before.
func Promote(ctx context.Context, c client.Client, name, buildID string) (previous string, err error) {
	h := c.WorkerDeploymentClient().GetHandle(name)
	d, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		return "", fmt.Errorf("describe deployment %s: %w", name, err)
	}
	// The conflict token makes a concurrent change by another operator fail
	// this one instead of being silently overwritten.
	_, err = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{
		BuildID: buildID, ConflictToken: d.ConflictToken,
	})
	if err != nil {
		return "", fmt.Errorf("make build %q current in deployment %s: %w", buildID, name, err)
	}
	return buildOf(d.Info.RoutingConfig.CurrentVersion), nil
}

// Ramp sends percent of new runs and AutoUpgrade tasks to buildID while
// the current build keeps the rest; 0 stops a ramp. Promote ends it.
func Ramp(ctx context.Context, c client.Client, name, buildID string, percent float32) error {
	h := c.WorkerDeploymentClient().GetHandle(name)
	d, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	if err != nil {
		return fmt.Errorf("describe deployment %s: %w", name, err)
	}
	if percent == 0 {
		buildID = "" // no ramping version at all, rather than one at 0 %
	}
	_, err = h.SetRampingVersion(ctx, client.WorkerDeploymentSetRampingVersionOptions{
		BuildID: buildID, Percentage: percent, ConflictToken: d.ConflictToken,
	})
	if err != nil {
		return fmt.Errorf("ramp build %q to %g%% in deployment %s: %w", buildID, percent, name, err)
	}
	return nil
}

// PromoteIfFirst makes buildID current when the deployment has never had a
// current version: the first versioned deploy, where no run would reach the
// new workers otherwise. Once anyone has chosen a current version (a build,
// or unversioned workers), it changes nothing: later builds become current
// only through Promote. It waits until Temporal has seen this build's
// pollers, so call it after Start. It returns the current build.
func PromoteIfFirst(ctx context.Context, c client.Client, name, buildID string) (current string, promoted bool, err error) {
	h := c.WorkerDeploymentClient().GetHandle(name)
	wait := 200 * time.Millisecond
	for {
		d, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
		if err == nil {
			rc := d.Info.RoutingConfig
			if rc.CurrentVersion != nil || chosen(rc.CurrentVersionChangedTime) {
				return buildOf(rc.CurrentVersion), false, nil
			}
			if hasBuild(d.Info, buildID) {
				_, err = h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{
					BuildID: buildID, ConflictToken: d.ConflictToken,
				})
				if err == nil {
					return buildID, true, nil
				}
			}
		}
		// Not yet: the deployment or this build is not registered until the
		// pollers' first requests reach matching, and a replica of the same
		// build may have won the conflict token (the next Describe sees it).
		select {
		case <-ctx.Done():
			if err == nil {
				err = ctx.Err()
			}
			return "", false, fmt.Errorf("make build %q the first current version of deployment %s: %w", buildID, name, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// chosen tells whether a current version was ever set: the server leaves
// the time unset until then.
func chosen(changed time.Time) bool {
	return !changed.IsZero() && changed.Unix() > 0
}

func hasBuild(info client.WorkerDeploymentInfo, buildID string) bool {
	for _, s := range info.VersionSummaries {
		if s.Version.BuildID == buildID {
			return true
		}
	}
	return false
}

func buildOf(v *sdkworker.WorkerDeploymentVersion) string {
	if v == nil {
		return ""
	}
	return v.BuildID
}
