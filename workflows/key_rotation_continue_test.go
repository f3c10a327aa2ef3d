package workflows_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

// rotationWaitSuite: a rotation waiting for operators continues as new
// after RemindersPerRun reminders and resumes its wait in the next run;
// an Update being handled holds the run open until it returns.
type rotationWaitSuite struct{ rotationHarness }

func TestKeyRotationWaits(t *testing.T) { suite.Run(t, new(rotationWaitSuite)) }

// waitT0 is the test runs' start; times are offsets from it.
var waitT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func (s *rotationWaitSuite) SetupTest() {
	s.setup()
	s.env.SetStartTime(waitT0)
}

// runToContinueAsNew runs until the rotation continues as new and returns
// the next run's input.
func (s *rotationWaitSuite) runToContinueAsNew(in contract.KeyRotationInput) contract.KeyRotationInput {
	s.defaults()
	s.env.SetStartWorkflowOptions(clientStartOptions(contract.KeyRotationID(in.Provider)))
	s.env.ExecuteWorkflow(workflows.KeyRotation, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(err, &can), "want continue-as-new, got %v", err)
	s.Equal(contract.KeyRotationType, can.WorkflowType.Name)
	var next contract.KeyRotationInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	return next
}

// at checks the run's state at d.
func (s *rotationWaitSuite) at(d time.Duration, state string) {
	s.env.RegisterDelayedCallback(func() { s.Equal(state, s.status().State, "at %s", d) }, d)
}

func (s *rotationWaitSuite) TestRemindersContinueAsNewAfterRemindersPerRun() {
	next := s.runToContinueAsNew(contract.KeyRotationInput{Provider: "stripe", ReminderEvery: time.Hour, RemindersPerRun: 3,
		RequestedBy: "schedule"})
	s.Equal([]string{"active stripe/api_key", "notify key-rotation-needed", "notify key-rotation-reminder",
		"notify key-rotation-reminder", "notify key-rotation-reminder"}, s.calls)
	s.Equal(3*time.Hour, s.env.Now().Sub(waitT0).Round(time.Minute),
		"continued right after the third reminder")
	s.Equal(contract.KeyRotationInput{
		Provider: "stripe", Name: "api_key", Grace: contract.DefaultKeyRotationGrace, ReminderEvery: time.Hour,
		RequestedBy: "schedule", RemindersPerRun: 3,
		Resume: &contract.KeyRotationResume{Phase: "awaiting-key", OldVersion: 1, OldExternalID: "key_old", Reminders: 3},
	}, next)
}

func (s *rotationWaitSuite) TestResumedRotationWaitsWhereItStopped() {
	s.at(30*time.Minute, "awaiting-revocation")
	s.update(90*time.Minute, contract.KeyRotationRevokedUpdate, "", nil, contract.KeyRevokedInput{Operator: "ops"})
	res := s.run(contract.KeyRotationInput{Provider: "stripe", ReminderEvery: time.Hour, Resume: &contract.KeyRotationResume{
		Phase: "awaiting-revocation", OldVersion: 1, NewVersion: 2, SubmittedBy: "alice", Reminders: 7,
		Detail: "key submitted by alice",
	}})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal([]string{"notify key-rotation-reminder", "revoke v1", "notify key-rotated"}, s.calls,
		"nothing is read, asked or activated again")
	s.Require().Len(s.notified, 2)
	s.InDelta(8, s.notified[0].Data["reminder"], 0, "reminders keep counting over runs")
	s.True(strings.HasSuffix(s.notified[0].IdempotencyKey, "/reminder-8"), s.notified[0].IdempotencyKey)
}

func (s *rotationWaitSuite) TestResumedWaitForProofActivatesOnProof() {
	s.env.RegisterDelayedCallback(func() {
		s.env.SignalWorkflow(contract.KeyRotationSecretProvenSignal, contract.KeyVersion{Version: 2})
	}, 10*time.Minute)
	s.at(20*time.Minute, "awaiting-revocation")
	s.update(30*time.Minute, contract.KeyRotationRevokedUpdate, "", nil, contract.KeyRevokedInput{Operator: "ops"})
	res := s.run(contract.KeyRotationInput{Provider: "stripe_webhook", Resume: &contract.KeyRotationResume{
		Phase: "awaiting-proof", OldVersion: 1, SubmittedVersion: 2, SubmittedBy: "alice",
	}})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal([]string{"activate v2", "revoke v1", "notify key-rotated"}, s.calls)
}

// TestKeyVerifiedAtTheBoundIsTaken: a key whose verification is under way
// when the run would continue as new is waited for, and taken: the run goes
// on instead of continuing.
func (s *rotationWaitSuite) TestKeyVerifiedAtTheBoundIsTaken() {
	s.env.OnActivity(krVerify.VerifyKey, mock.Anything, mock.Anything).After(30 * time.Minute).Return(
		func(_ context.Context, in activities.VerifyKeyInput) (*activities.VerifyKeyOutput, error) {
			s.call("verify-key v%d", in.Version)
			return &activities.VerifyKeyOutput{Valid: true}, nil
		}).Once()
	// The second reminder, and the bound, come at 2h: the key is submitted
	// at 1h50m and verified at 2h20m.
	s.update(110*time.Minute, contract.KeyRotationSubmitKeyUpdate, "", nil, contract.SubmitKeyInput{Version: 2, Operator: "ops"})
	s.update(3*time.Hour, contract.KeyRotationRevokedUpdate, "", nil, contract.KeyRevokedInput{Operator: "ops"})
	res := s.run(contract.KeyRotationInput{Provider: "stripe", ReminderEvery: time.Hour, RemindersPerRun: 2})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal([]string{"active stripe/api_key", "notify key-rotation-needed", "notify key-rotation-reminder",
		"notify key-rotation-reminder", "verify-key v2", "activate v2", "revoke v1", "notify key-rotated"}, s.calls)
}

// TestOlderRunsGoOnReminding: a run from before the change reminds in the
// run it is in, however many reminders it sends.
func (s *rotationWaitSuite) TestOlderRunsGoOnReminding() {
	s.env.OnGetVersion("reminders-continue-as-new", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.update(5*time.Hour+30*time.Minute, contract.KeyRotationCancelUpdate, "", nil, contract.KeyRevokedInput{Operator: "ops"})
	res := s.run(contract.KeyRotationInput{Provider: "stripe", ReminderEvery: time.Hour, RemindersPerRun: 2})
	s.Equal(&contract.KeyRotationResult{State: "cancelled"}, res)
	reminders := 0
	for _, c := range s.calls {
		if c == "notify key-rotation-reminder" {
			reminders++
		}
	}
	s.Equal(5, reminders)
}

// TestRunWaitsForTheUpdateItIsHandling: an operator cancels while a
// submitted key is being verified. The run does not end under the
// submit-key Update: it waits for the verification, and the Update answers
// that the key was not taken (the API then revokes it).
func (s *rotationWaitSuite) TestRunWaitsForTheUpdateItIsHandling() {
	s.env.OnActivity(krVerify.VerifyKey, mock.Anything, mock.Anything).After(30 * time.Minute).Return(
		func(_ context.Context, in activities.VerifyKeyInput) (*activities.VerifyKeyOutput, error) {
			s.call("verify-key v%d at %s", in.Version, s.env.Now().Sub(waitT0).Round(time.Minute))
			return &activities.VerifyKeyOutput{Valid: true}, nil
		}).Once()
	var submitErr error
	submitted := false
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(contract.KeyRotationSubmitKeyUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { s.Fail("rejected: " + err.Error()) },
			OnComplete: func(_ any, err error) {
				submitted, submitErr = true, err
			},
		}, contract.SubmitKeyInput{Version: 2, Operator: "ops"})
	}, 10*time.Minute)
	s.update(20*time.Minute, contract.KeyRotationCancelUpdate, "", nil, contract.KeyRevokedInput{Operator: "alice"})

	res := s.run(contract.KeyRotationInput{Provider: "stripe"})
	s.Equal(&contract.KeyRotationResult{State: "cancelled"}, res)
	s.True(submitted, "the submit-key Update was answered before the run ended")
	s.ErrorContains(submitErr, "cancelled while the key was verified")
	s.Equal(40*time.Minute, s.env.Now().Sub(waitT0).Round(time.Minute),
		"the run ended once the verification returned")
	s.Equal([]string{"active stripe/api_key", "notify key-rotation-needed", "verify-key v2 at 40m0s"}, s.calls)
}
