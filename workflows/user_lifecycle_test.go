package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

var (
	users  *activities.UserStoreActivities
	emails *activities.EmailActivities
)

const userWorkflowID = "user/user_1"

// userT0 is the test workflow's start; times below are offsets from it.
var userT0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

type userSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	// calls lists every activity call and signal sent, in order, as
	// "Activity arg".
	calls []string
	// row is the customer row as the fake store holds it.
	row struct {
		exists, tombstone bool
		email             string
	}
	welcomes  []activities.SendEmailInput
	shadows   map[string][]string // email → shadow alias ids
	verified  bool                // the mailbox of the new address
	forwarded []activities.ForwardAliasesInput
	decided   []activities.DecideDeadLetterInput
}

func TestUserLifecycle(t *testing.T) { suite.Run(t, new(userSuite)) }

func (s *userSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetStartTime(userT0)
	s.env.SetStartWorkflowOptions(clientStartOptions(userWorkflowID))
	s.env.RegisterWorkflow(workflows.UserLifecycle)
	s.env.RegisterActivity(users)
	s.env.RegisterActivity(knock)
	s.env.RegisterActivity(emails)
	s.env.RegisterActivity(simpleLogin)
	s.env.RegisterActivity(dl)
	s.calls, s.welcomes, s.forwarded, s.decided = nil, nil, nil, nil
	s.row.exists, s.row.tombstone, s.row.email = false, false, ""
	s.shadows = map[string][]string{"ada@example.com": {"al-1"}, "ada@work.example": {"al-2"}, "ada@new.example": {"al-3"}}
	s.verified = false
}

func (s *userSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

func (s *userSuite) call(format string, args ...any) {
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
}

// defaults registers the happy-path mocks after a test's own, because the
// first matching expectation wins.
func (s *userSuite) defaults() {
	s.env.OnActivity(users.UpsertUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.UpsertUserInput) (*activities.UpsertUserOutput, error) {
			s.call("UpsertUser %s %s", in.Email, in.Name)
			if s.row.tombstone {
				return &activities.UpsertUserOutput{Deleted: true}, nil
			}
			out := &activities.UpsertUserOutput{PreviousEmail: s.row.email}
			s.row.exists, s.row.email = true, in.Email
			return out, nil
		}).Maybe()
	s.env.OnActivity(knock.IdentifyUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.IdentifyUserInput) (*activities.KnockUserOutput, error) {
			s.call("IdentifyUser %s %s %s", in.UserID, in.Email, in.Name)
			return &activities.KnockUserOutput{}, nil
		}).Maybe()
	s.env.OnActivity(emails.SendTemplatedEmail, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SendEmailInput) (*activities.SendEmailOutput, error) {
			s.call("SendTemplatedEmail %s %s", in.Template, in.To)
			s.welcomes = append(s.welcomes, in)
			return &activities.SendEmailOutput{EmailID: "em_1", Status: "sent"}, nil
		}).Maybe()
	s.env.OnActivity(users.FindShadowAliases, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FindShadowAliasesInput) (*activities.AliasIDsOutput, error) {
			s.call("FindShadowAliases %s", strings.Join(in.Emails, ","))
			var ids []string
			for _, e := range in.Emails {
				ids = append(ids, s.shadows[strings.ToLower(e)]...)
			}
			return &activities.AliasIDsOutput{AliasIDs: ids}, nil
		}).Maybe()
	s.env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).Return(
		func(_, workflowID, _, signal string, arg any) error {
			cmd := arg.(contract.AliasCommand)
			s.call("signal %s %s %s %s", workflowID, signal, cmd.EventID, cmd.CustomerID)
			if workflowID == "alias/al-ended" {
				return &temporal.UnknownExternalWorkflowExecutionError{}
			}
			return nil
		}).Maybe()
	s.env.OnActivity(knock.DeleteUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeleteUserInput) (*activities.KnockUserOutput, error) {
			s.call("DeleteUser %s", in.UserID)
			return &activities.KnockUserOutput{}, nil
		}).Maybe()
	s.env.OnActivity(users.FindUserAliases, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FindUserAliasesInput) (*activities.AliasIDsOutput, error) {
			s.call("FindUserAliases %s %s", in.CustomerID, strings.Join(in.Emails, ","))
			return &activities.AliasIDsOutput{AliasIDs: []string{"al-1", "al-own", "al-ended"}}, nil
		}).Maybe()
	s.env.OnActivity(users.ScrubUser, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ScrubUserInput) error {
			s.call("ScrubUser %s", in.CustomerID)
			s.row.tombstone = true
			return nil
		}).Maybe()
	s.env.OnActivity(simpleLogin.EnsureMailbox, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EnsureMailboxInput) (*activities.MailboxOutput, error) {
			s.call("EnsureMailbox %s %t", in.Email, s.verified)
			return &activities.MailboxOutput{MailboxID: 9, Verified: s.verified}, nil
		}).Maybe()
	s.env.OnActivity(users.ForwardableAliases, mock.Anything, mock.Anything).Return(
		&activities.ForwardableAliasesOutput{SimpleLoginIDs: []int64{41, 42}}, nil).Maybe()
	s.env.OnActivity(simpleLogin.ForwardAliases, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ForwardAliasesInput) (*activities.ForwardAliasesOutput, error) {
			s.call("ForwardAliases %v to %d at %s", in.SimpleLoginIDs, in.MailboxID, s.env.Now().Sub(userT0))
			s.forwarded = append(s.forwarded, in)
			return &activities.ForwardAliasesOutput{Forwarded: in.SimpleLoginIDs}, nil
		}).Maybe()
	s.env.OnActivity(simpleLogin.DeleteMailboxes, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeleteMailboxesInput) (*activities.DeleteMailboxesOutput, error) {
			s.call("DeleteMailboxes %v", in.MailboxIDs)
			return &activities.DeleteMailboxesOutput{Deleted: in.MailboxIDs}, nil
		}).Maybe()
	s.env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(&activities.RecordDeadLetterOutput{DeadLetterID: 5}, nil).Maybe()
	s.env.OnActivity(dl.DecideDeadLetter, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DecideDeadLetterInput) error {
			s.decided = append(s.decided, in)
			return nil
		}).Maybe()
}

// created, updated and deleted are Clerk events of user_1.
func created(id string, at int64, name, primary string, verified ...string) contract.UserEvent {
	return contract.UserEvent{EventID: id, Type: contract.UserEventCreated, UserID: "user_1", UpdatedAt: at,
		Name: name, PrimaryEmail: primary, VerifiedEmails: verified}
}

func updated(id string, at int64, name, primary string, verified ...string) contract.UserEvent {
	ev := created(id, at, name, primary, verified...)
	ev.Type = contract.UserEventUpdated
	return ev
}

func deleted(id string) contract.UserEvent {
	return contract.UserEvent{EventID: id, Type: contract.UserEventDeleted, UserID: "user_1"}
}

// send delivers the events, together, at offset at.
func (s *userSuite) send(at time.Duration, evs ...contract.UserEvent) {
	s.env.RegisterDelayedCallback(func() {
		for _, ev := range evs {
			s.env.SignalWorkflow(contract.UserEventSignal, ev)
		}
	}, at)
}

func (s *userSuite) status() contract.Status {
	v, err := s.env.QueryWorkflow(contract.StatusQuery)
	s.Require().NoError(err)
	var st contract.Status
	s.Require().NoError(v.Get(&st))
	return st
}

func (s *userSuite) expectStatus(at time.Duration, step, state string) {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal(step, st.Step, "step at %s", at)
		s.Equal(state, st.State, "state at %s", at)
	}, at)
}

func input() contract.UserLifecycleInput {
	return contract.UserLifecycleInput{UserID: "user_1", MailboxCheck: time.Hour, MailboxVerifyWait: 5 * time.Hour}
}

// run runs the entity until it ends by itself and returns its result.
func (s *userSuite) run(in contract.UserLifecycleInput) *contract.UserLifecycleResult {
	s.defaults()
	s.env.ExecuteWorkflow(workflows.UserLifecycle, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.UserLifecycleResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return &res
}

// runUntil runs the entity until it is cancelled at offset end.
func (s *userSuite) runUntil(end time.Duration, in contract.UserLifecycleInput) {
	s.defaults()
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, end)
	s.env.ExecuteWorkflow(workflows.UserLifecycle, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	s.Require().True(temporal.IsCanceledError(err), "want cancelled, got %v", err)
}

// decide sends an operator decision once the run is parked on step.
func (s *userSuite) decide(at time.Duration, step, action string) {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.True(st.Parked, "parked")
		s.Equal(step, st.Step)
		s.env.UpdateWorkflow(contract.DeadLetterDecisionUpdate, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { s.Fail("rejected", err.Error()) }, OnComplete: func(any, error) {},
		}, contract.DeadLetterDecision{DeadLetterID: 5, Action: action, Operator: "ops"})
	}, at)
}
