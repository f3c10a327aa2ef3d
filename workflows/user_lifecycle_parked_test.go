package workflows_test

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

// A user's entity parked on a step of an event continues as new when its
// history reaches its bound; the next run takes the dead letter over and
// handles the event again, applying the operator's decision to that step.

func (s *userSuite) TestContinuesAsNewWhileParkedOnAnEvent() {
	s.env.OnActivity(knock.IdentifyUser, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("Knock: bad key", "KnockAuthFailed", errors.New("401"))).Once()
	in := input()
	in.MaxHistoryEvents = 50
	s.send(time.Minute, created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	// Delivered while parked: it waits, and is carried behind the parked one.
	s.send(30*time.Minute, updated("msg_u", 2000, "Ada L.", "ada@example.com", "ada@example.com"))
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked)
		s.Equal("identify-user", st.Step)
		s.env.SetCurrentHistoryLength(51)
	}, time.Hour)
	s.defaults()
	s.env.ExecuteWorkflow(workflows.UserLifecycle, in)
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &can), "want continue-as-new, got %v", s.env.GetWorkflowError())
	var next contract.UserLifecycleInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.Equal(&contract.ParkedStep{DeadLetterID: 5, Step: "identify-user"}, next.Parked)
	s.Require().NotNil(next.State)
	s.Equal(contract.UserState{Pending: []contract.UserEvent{
		created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"),
		updated("msg_u", 2000, "Ada L.", "ada@example.com", "ada@example.com"),
	}}, *next.State, "the parked event goes first, not yet seen, for the next run to handle again")
	s.Empty(s.decided, "the dead letter stays parked for the next run")
	s.Empty(s.welcomes)
}

func (s *userSuite) TestNextRunHandlesTheParkedEventOnDecision() {
	var moved []activities.MoveDeadLetterInput
	s.env.OnActivity(dl.MoveDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.MoveDeadLetterInput) (*activities.MoveDeadLetterOutput, error) {
			moved = append(moved, in)
			return &activities.MoveDeadLetterOutput{Moved: true}, nil
		}).Once()
	in := input()
	in.State = &contract.UserState{Pending: []contract.UserEvent{created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com")}}
	in.Parked = &contract.ParkedStep{DeadLetterID: 5, Step: "identify-user"}
	s.expectStatus(30*time.Minute, "identify-user", "new")
	s.decide(time.Hour, "identify-user", contract.DecisionRetry)
	s.expectStatus(2*time.Hour, "await-event", contract.UserActive)
	s.send(3*time.Hour, created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	s.runUntil(4*time.Hour, in)
	s.Equal([]activities.MoveDeadLetterInput{{DeadLetterID: 5, WorkflowID: userWorkflowID, RunID: "default-test-run-id"}}, moved)
	s.Equal(1, count(s.calls, "IdentifyUser user_1 ada@example.com Ada"), "identified once decided; the redelivered msg_c is seen")
	s.Len(s.welcomes, 1)
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 5, Status: "retrying", Operator: "ops"},
		{DeadLetterID: 5, Status: "resolved"},
	}, s.decided)
}

// TestNextRunSkipsTheParkedStep: a skip decided for the handed-over dead
// letter skips that step when the event is handled again; the rest runs.
func (s *userSuite) TestNextRunSkipsTheParkedStep() {
	s.env.OnActivity(dl.MoveDeadLetter, mock.Anything, mock.Anything).Return(&activities.MoveDeadLetterOutput{Moved: true}, nil).Once()
	in := input()
	in.State = &contract.UserState{Pending: []contract.UserEvent{created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com")}}
	in.Parked = &contract.ParkedStep{DeadLetterID: 5, Step: "send-welcome"}
	s.decide(time.Hour, "send-welcome", contract.DecisionSkip)
	s.runUntil(2*time.Hour, in)
	s.Empty(s.welcomes, "the welcome was skipped")
	s.Contains(s.calls, "signal alias/al-1 claim msg_c user_1", "the claim after it ran")
	s.Equal([]activities.DecideDeadLetterInput{{DeadLetterID: 5, Status: "skipped", Operator: "ops"}}, s.decided)
}

func (s *userSuite) TestParkedWithoutStateIsInvalid() {
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.UserLifecycle)
	env.ExecuteWorkflow(workflows.UserLifecycle, contract.UserLifecycleInput{UserID: "user_1",
		Parked: &contract.ParkedStep{DeadLetterID: 5, Step: "identify-user"}})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(env.GetWorkflowError(), &appErr))
	s.Equal("InvalidInput", appErr.Type())
	s.defaults()
}
