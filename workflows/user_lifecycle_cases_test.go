package workflows_test

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

func (s *userSuite) TestCreatedRecordsIdentifiesWelcomesAndClaims() {
	s.send(time.Minute, created("msg_c", 1000, "Ada Lovelace", "ada@example.com", "ada@example.com", "ada@work.example"))
	s.expectStatus(time.Hour, "await-event", contract.UserActive)
	s.runUntil(2*time.Hour, input())
	s.Equal([]string{
		"UpsertUser ada@example.com Ada Lovelace",
		"IdentifyUser user_1 ada@example.com Ada Lovelace",
		"SendTemplatedEmail welcome ada@example.com",
		"FindShadowAliases ada@example.com,ada@work.example",
		"signal alias/al-1 claim msg_c user_1",
		"signal alias/al-2 claim msg_c user_1",
	}, signalsSorted(s.calls), "shadow aliases of every verified address are claimed, after the row exists")
	s.Equal([]activities.SendEmailInput{{
		Template: "welcome", To: "ada@example.com", Data: map[string]any{"name": "Ada Lovelace"},
		IdempotencyKey: "user/user_1/welcome", BusinessKey: "user/user_1",
	}}, s.welcomes)
}

func (s *userSuite) TestUnverifiedAddressesClaimNothing() {
	s.send(time.Minute, created("msg_c", 1000, "Ada", "ada@example.com"))
	s.runUntil(time.Hour, input())
	s.NotContains(s.calls, "FindShadowAliases ada@example.com")
	s.Len(s.welcomes, 1, "the primary address is welcomed all the same")
}

func (s *userSuite) TestRedeliveryChangesNothing() {
	ev := created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com")
	s.send(time.Minute, ev)
	s.send(2*time.Minute, ev)
	// The same data under another message id: synced already, welcomed once.
	again := ev
	again.EventID = "msg_c2"
	s.send(3*time.Minute, again)
	s.runUntil(time.Hour, input())
	s.Len(s.welcomes, 1)
	s.Equal(1, count(s.calls, "UpsertUser ada@example.com Ada"))
	s.Equal(1, count(s.calls, "IdentifyUser user_1 ada@example.com Ada"))
}

// Svix does not promise order: an update may come before the creation, with
// newer data. The creation still welcomes, with the newer name, and its
// older snapshot overwrites nothing.
func (s *userSuite) TestUpdatedBeforeCreated() {
	s.send(time.Minute,
		updated("msg_u", 2000, "Ada L.", "ada@example.com", "ada@example.com"),
		created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	s.runUntil(time.Hour, input())
	s.Equal([]string{
		"UpsertUser ada@example.com Ada L.",
		"IdentifyUser user_1 ada@example.com Ada L.",
		"FindShadowAliases ada@example.com",
		"signal alias/al-1 claim msg_u user_1",
		"SendTemplatedEmail welcome ada@example.com",
		"FindShadowAliases ada@example.com",
		"signal alias/al-1 claim msg_c user_1",
	}, signalsSorted(s.calls))
	s.Equal("Ada L.", s.welcomes[0].Data["name"])
}

// A new primary address: the row and Knock follow at once; the aliases
// follow once SimpleLogin has verified the new address's mailbox, and the
// shadow aliases made for it are claimed.
func (s *userSuite) TestNewPrimaryAddressMovesAliasesOnceVerified() {
	s.send(time.Minute, created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	s.send(10*time.Minute, updated("msg_u", 2000, "Ada", "ada@new.example", "ada@example.com", "ada@new.example"))
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Contains(st.Detail, "once SimpleLogin has verified it")
		s.NotContains(st.Detail, "@", "the status names no address")
		s.verified = true
	}, 90*time.Minute)
	s.runUntil(5*time.Hour, input())
	s.Equal([]string{
		"UpsertUser ada@new.example Ada",
		"IdentifyUser user_1 ada@new.example Ada",
		"EnsureMailbox ada@new.example false",
		"FindShadowAliases ada@example.com,ada@new.example",
		"signal alias/al-1 claim msg_u user_1",
		"signal alias/al-3 claim msg_u user_1",
		"EnsureMailbox ada@new.example false",
		"EnsureMailbox ada@new.example true",
		"ForwardAliases [41 42] to 9 at 2h10m0s",
	}, signalsSorted(s.calls[5:]), "checked every MailboxCheck until verified")
	s.Len(s.forwarded, 1)
}

func (s *userSuite) TestMailboxNeverVerifiedLeavesTheAliases() {
	s.send(time.Minute, created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	s.send(10*time.Minute, updated("msg_u", 2000, "Ada", "ada@new.example", "ada@new.example"))
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal(contract.UserActive, st.State)
		s.Contains(st.Detail, "never verified")
	}, 6*time.Hour)
	s.runUntil(10*time.Hour, input())
	s.Empty(s.forwarded)
	s.Equal(6, count(s.calls, "EnsureMailbox ada@new.example false"), "one at the change, then hourly for the 5h wait")
}

func (s *userSuite) TestUnverifiedNewPrimaryIsNotFollowed() {
	s.send(time.Minute, created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	s.send(10*time.Minute, updated("msg_u", 2000, "Ada", "ada@new.example", "ada@example.com"))
	s.runUntil(time.Hour, input())
	s.Zero(count(s.calls, "EnsureMailbox ada@new.example false"))
}

// The user's first event is an update (a user created before crmflow knew
// of Clerk): the row tells the entity the address changed.
func (s *userSuite) TestFirstEventIsAnUpdateOfTheAddress() {
	s.row.exists, s.row.email = true, "ada@example.com"
	s.verified = true
	s.send(time.Minute, updated("msg_u", 2000, "Ada", "ada@new.example", "ada@new.example"))
	s.runUntil(time.Hour, input())
	s.Len(s.forwarded, 1)
	s.Empty(s.welcomes, "only a user.created welcomes")
}

func (s *userSuite) TestDeletedRemovesTheUserEverywhereAndEnds() {
	s.verified = true
	s.send(time.Minute, created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	s.send(10*time.Minute, updated("msg_u", 2000, "Ada", "ada@new.example", "ada@new.example"))
	// Delivered with the deletion: it finds the user gone.
	s.send(time.Hour, deleted("msg_d"), created("msg_c_late", 3000, "Ada", "ada@example.com", "ada@example.com"))
	res := s.run(input())
	s.Equal(contract.UserDeleted, res.State)
	i := index(s.calls, "DeleteUser user_1")
	s.Require().GreaterOrEqual(i, 0)
	s.Equal([]string{
		"DeleteUser user_1",
		"FindUserAliases user_1 ada@example.com,ada@new.example",
		"signal alias/al-1 delete msg_d ",
		"signal alias/al-ended delete msg_d ",
		"signal alias/al-own delete msg_d ",
		"DeleteMailboxes [9]",
		"ScrubUser user_1",
	}, signalsSorted(s.calls[i:]), "every address the user had is swept; an ended alias needs nothing")
	s.Len(s.welcomes, 1)
	st := s.status()
	s.Equal(contract.Status{Step: "done", State: contract.UserDeleted}, st)
}

// Deleted before its creation was delivered: the deletion runs all the same
// and leaves the tombstone the creation will find.
func (s *userSuite) TestDeletedFirst() {
	s.send(time.Minute, deleted("msg_d"))
	res := s.run(input())
	s.Equal(contract.UserDeleted, res.State)
	s.Equal([]string{
		"DeleteUser user_1", "FindUserAliases user_1 ",
		"signal alias/al-1 delete msg_d ", "signal alias/al-ended delete msg_d ", "signal alias/al-own delete msg_d ",
		"ScrubUser user_1",
	}, signalsSorted(s.calls))
}

// A created whose run starts after the deletion's ended (its history gone
// by retention) finds the tombstone: nothing is written, nobody welcomed.
func (s *userSuite) TestCreatedAfterDeletionFindsTheTombstone() {
	s.row.tombstone = true
	s.send(time.Minute, created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	res := s.run(input())
	s.Equal(contract.UserDeleted, res.State)
	s.Equal([]string{"UpsertUser ada@example.com Ada"}, s.calls)
	s.Empty(s.welcomes)
}

func (s *userSuite) TestKnockRefusalParksThenRetryGoesOn() {
	s.env.OnActivity(knock.IdentifyUser, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("Knock: invalid", "KnockInvalidRequest", errors.New("422"))).Once()
	s.send(time.Minute, created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	s.decide(time.Hour, "identify-user", "retry")
	s.expectStatus(2*time.Hour, "await-event", contract.UserActive)
	s.runUntil(3*time.Hour, input())
	s.Equal([]activities.DecideDeadLetterInput{
		{DeadLetterID: 5, Status: "retrying", Operator: "ops"},
		{DeadLetterID: 5, Status: "resolved"},
	}, s.decided)
	s.Len(s.welcomes, 1, "the run went on after the retry")
}

func (s *userSuite) TestWelcomeRefusedParksAndSkipGoesOn() {
	s.env.OnActivity(emails.SendTemplatedEmail, mock.Anything, mock.Anything).Return(nil,
		temporal.NewNonRetryableApplicationError("Resend: 422 the to field is invalid",
			activities.ErrorType("Resend", activities.ErrTypeInvalid), nil)).Once()
	s.send(time.Minute, created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	s.decide(time.Hour, "send-welcome", "skip")
	s.runUntil(2*time.Hour, input())
	s.Contains(s.calls, "signal alias/al-1 claim msg_c user_1", "claims go on after the skip")
	s.Empty(s.welcomes)
}

func (s *userSuite) TestContinueAsNewCarriesState() {
	in := input()
	in.MaxHistoryEvents = 40
	s.send(time.Minute, created("msg_c", 1000, "Ada", "ada@example.com", "ada@example.com"))
	s.env.RegisterDelayedCallback(func() {
		s.env.SetCurrentHistoryLength(41)
		s.env.SignalWorkflow(contract.UserEventSignal, updated("msg_u1", 2000, "Ada L.", "ada@example.com", "ada@example.com"))
		s.env.SignalWorkflow(contract.UserEventSignal, deleted("msg_d"))
	}, time.Hour)
	s.defaults()
	s.env.ExecuteWorkflow(workflows.UserLifecycle, in)
	err := s.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(err, &can), "want continue-as-new, got %v", err)
	s.Equal(contract.UserLifecycleType, can.WorkflowType.Name)
	var next contract.UserLifecycleInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.Require().NotNil(next.State)
	st := *next.State
	s.True(st.Created && st.Welcomed && st.Synced)
	s.Equal("ada@example.com", st.PrimaryEmail)
	s.Equal([]string{"ada@example.com"}, st.KnownEmails)
	s.Equal(int64(2000), st.UpdatedAt, "the update woke the run and was handled; the deletion is carried")
	s.Equal("Ada L.", st.Name)
	s.Equal([]string{"msg_c", "msg_u1"}, st.Seen)
	s.Equal([]contract.UserEvent{deleted("msg_d")}, st.Pending)
}

func (s *userSuite) TestResumesFromCarriedState() {
	in := input()
	in.State = &contract.UserState{Name: "Ada", PrimaryEmail: "ada@example.com", VerifiedEmails: []string{"ada@example.com"},
		KnownEmails: []string{"ada@example.com"}, UpdatedAt: 1000, Synced: true, Created: true, Welcomed: true,
		Seen: []string{"msg_c"}, Pending: []contract.UserEvent{deleted("msg_d")}}
	res := s.run(in)
	s.Equal(contract.UserDeleted, res.State)
	s.Empty(s.welcomes)
	s.Equal("DeleteUser user_1", s.calls[0], "the carried deletion runs first")
}

func (s *userSuite) TestInvalidInputFailsAtOnce() {
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(workflows.UserLifecycle)
	env.ExecuteWorkflow(workflows.UserLifecycle, contract.UserLifecycleInput{UserID: "user 1/.."})
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(env.GetWorkflowError(), &appErr))
	s.Equal("InvalidInput", appErr.Type())
	s.defaults()
}

func count(calls []string, want string) int {
	n := 0
	for _, c := range calls {
		if c == want {
			n++
		}
	}
	return n
}

// signalsSorted sorts each run of consecutive signals in calls: an entity
// sends them all at once and waits for them together, so the test
// environment may record them in any order.
func signalsSorted(calls []string) []string {
	out := slices.Clone(calls)
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && strings.HasPrefix(out[j], "signal ") {
			j++
		}
		slices.Sort(out[i:j])
		i = max(j, i+1)
	}
	return out
}

func index(calls []string, want string) int {
	for i, c := range calls {
		if c == want {
			return i
		}
	}
	return -1
}
