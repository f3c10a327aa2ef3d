package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/workflows"
)

var (
	krCreds  *activities.CredentialActivities
	krResend *activities.ResendActivities
	krVerify *activities.KeyVerifier
)

const (
	krValidStripeKey = "sk_live_valid_key_0123456789"
	krBadStripeKey   = "sk_live_refused_key_987654"
	// krValidVersion is the stored version of a key the provider accepts;
	// any other submitted version is refused.
	krValidVersion = 2
)

// rotationHarness is what the key-rotation suites share: a test
// environment with every activity mocked, and helpers to drive a run.
type rotationHarness struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	// calls lists the activities run, in order, with their key argument.
	calls    []string
	stored   []activities.StoreCredentialInput
	notified []activities.NotifyInput
	created  []activities.CreateAPIKeyInput
}

// keyRotationSuite runs rotations as runs started before keys stayed out of
// histories run them (keyMaterialChange at DefaultVersion): those runs must
// behave as they always did.
type keyRotationSuite struct{ rotationHarness }

func TestKeyRotation(t *testing.T) { suite.Run(t, new(keyRotationSuite)) }

func (s *keyRotationSuite) SetupTest() {
	s.setup()
	s.env.OnGetVersion("key-material-by-version", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion).Maybe()
}

func (s *rotationHarness) setup() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflow(workflows.KeyRotation)
	s.env.RegisterActivity(krCreds)
	s.env.RegisterActivity(krResend)
	s.env.RegisterActivity(krVerify)
	s.env.RegisterActivity(knock)
	s.env.RegisterActivity(dl)
	s.calls, s.stored, s.notified, s.created = nil, nil, nil, nil
}

func (s *rotationHarness) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

func (s *rotationHarness) call(format string, args ...any) {
	s.calls = append(s.calls, fmt.Sprintf(format, args...))
}

// defaults registers the happy path after a test's own expectations: v1 is
// active (Resend key id key_old), a new version is v2.
func (s *rotationHarness) defaults() {
	s.env.OnActivity(krCreds.ActiveCredential, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ActiveCredentialInput) (*activities.ActiveCredentialOutput, error) {
			s.call("active %s/%s", in.Provider, in.Name)
			return &activities.ActiveCredentialOutput{Version: 1, ExternalID: "key_old"}, nil
		}).Maybe()
	s.env.OnActivity(krResend.CreateAPIKey, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreateAPIKeyInput) (*activities.CreateAPIKeyOutput, error) {
			s.call("create")
			s.created = append(s.created, in)
			if in.StoreAs != nil {
				return &activities.CreateAPIKeyOutput{KeyID: "key_new", Version: 2}, nil
			}
			return &activities.CreateAPIKeyOutput{KeyID: "key_new", Token: "re_new_token"}, nil
		}).Maybe()
	s.env.OnActivity(krResend.VerifyAPIKey, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.VerifyAPIKeyInput) (*activities.VerifyAPIKeyOutput, error) {
			if in.Key != nil {
				s.call("verify v%d", in.Key.Version)
			} else {
				s.call("verify %s", in.Token.Reveal())
			}
			return &activities.VerifyAPIKeyOutput{Valid: true}, nil
		}).Maybe()
	s.env.OnActivity(krCreds.CreateToken, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CreateTokenInput) (*activities.CreateTokenOutput, error) {
			s.call("create-token %s/%s", in.Provider, in.Name)
			return &activities.CreateTokenOutput{Version: 2}, nil
		}).Maybe()
	s.env.OnActivity(krResend.DeleteAPIKey, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.DeleteAPIKeyInput) error {
			s.call("delete %s", in.KeyID)
			return nil
		}).Maybe()
	s.env.OnActivity(krCreds.GenerateToken, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.GenerateTokenInput) (*activities.GenerateTokenOutput, error) {
			s.call("generate")
			return &activities.GenerateTokenOutput{Token: "tok_new"}, nil
		}).Maybe()
	s.env.OnActivity(krCreds.StoreCredential, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.StoreCredentialInput) (*activities.StoreCredentialOutput, error) {
			s.call("store")
			s.stored = append(s.stored, in)
			return &activities.StoreCredentialOutput{Version: 2}, nil
		}).Maybe()
	s.env.OnActivity(krCreds.ActivateCredential, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CredentialRef) error {
			s.call("activate v%d", in.Version)
			return nil
		}).Maybe()
	s.env.OnActivity(krCreds.RevokeCredential, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CredentialRef) error {
			s.call("revoke v%d", in.Version)
			return nil
		}).Maybe()
	s.env.OnActivity(krVerify.VerifyKey, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.VerifyKeyInput) (*activities.VerifyKeyOutput, error) {
			if in.Version > 0 {
				s.call("verify-key v%d", in.Version)
				if in.Version == krValidVersion {
					return &activities.VerifyKeyOutput{Valid: true}, nil
				}
				return &activities.VerifyKeyOutput{Reason: "invalid_api_key"}, nil
			}
			s.call("verify-key")
			if in.Secret == krValidStripeKey {
				return &activities.VerifyKeyOutput{Valid: true}, nil
			}
			return &activities.VerifyKeyOutput{Reason: "invalid_api_key"}, nil
		}).Maybe()
	s.env.OnActivity(knock.Notify, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.NotifyInput) (*activities.NotifyOutput, error) {
			s.call("notify %s", in.Workflow)
			s.notified = append(s.notified, in)
			return &activities.NotifyOutput{WorkflowRunID: "run"}, nil
		}).Maybe()
	s.env.OnActivity(dl.RecordDeadLetter, mock.Anything, mock.Anything).Return(&activities.RecordDeadLetterOutput{DeadLetterID: 9}, nil).Maybe()
	s.env.OnActivity(dl.DecideDeadLetter, mock.Anything, mock.Anything).Return(nil).Maybe()
}

func (s *rotationHarness) run(in contract.KeyRotationInput) *contract.KeyRotationResult {
	s.defaults()
	s.env.SetStartWorkflowOptions(clientStartOptions(contract.KeyRotationID(in.Provider)))
	s.env.ExecuteWorkflow(workflows.KeyRotation, in)
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res contract.KeyRotationResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return &res
}

func (s *rotationHarness) status() contract.Status {
	v, err := s.env.QueryWorkflow(contract.StatusQuery)
	s.Require().NoError(err)
	var st contract.Status
	s.Require().NoError(v.Get(&st))
	return st
}

// update sends an Update at d; a non-empty wantReject is the rejection
// expected, else the result is handed to done.
func (s *rotationHarness) update(d time.Duration, name, wantReject string, done func(any), arg any) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {
				if wantReject != "" {
					s.Fail("accepted, want rejected: " + wantReject)
				}
			},
			OnReject: func(err error) {
				if wantReject == "" {
					s.Fail("rejected: " + err.Error())
					return
				}
				s.ErrorContains(err, wantReject)
			},
			OnComplete: func(res any, err error) {
				if wantReject == "" {
					s.NoError(err)
					if done != nil {
						done(res)
					}
				}
			},
		}, arg)
	}, d)
}

// keyPrefix is the idempotency keys' common prefix: workflow ID and run ID.
func (s *rotationHarness) keyPrefix(provider string) string {
	s.Require().NotEmpty(s.notified)
	key := s.notified[0].IdempotencyKey
	s.Require().True(strings.HasPrefix(key, contract.KeyRotationID(provider)+"/"), key)
	return key[:strings.LastIndex(key, "/")+1]
}

func (s *keyRotationSuite) TestResendRotates() {
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal("grace", st.Step)
		s.NotContains(fmt.Sprint(st), "re_new_token")
		s.NotContains(s.calls, "delete key_old", "the old key lives through the grace period")
	}, 47*time.Hour)
	res := s.run(contract.KeyRotationInput{Provider: "resend", Grace: 48 * time.Hour, RequestedBy: "schedule"})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal([]string{"active resend/api_key", "create", "verify re_new_token", "store", "activate v2",
		"delete key_old", "revoke v1", "notify key-rotated"}, s.calls)
	s.Require().Len(s.created, 1)
	s.Equal(activities.ResendFullAccess, s.created[0].Permission)
	s.True(strings.HasPrefix(s.created[0].Name, activities.ResendKeyNamePrefix))
	s.Equal([]activities.StoreCredentialInput{{Provider: "resend", Name: "api_key", Secret: "re_new_token", ExternalID: "key_new"}}, s.stored)
	prefix := s.keyPrefix("resend")
	s.Equal(activities.ResendKeyName(strings.TrimSuffix(strings.TrimPrefix(prefix, "key-rotation/resend/"), "/")), s.created[0].Name)
	s.Equal(prefix+"notify-rotated", s.notified[0].IdempotencyKey)
	s.Equal([]string{workflows.OperatorsRecipient}, s.notified[0].Recipients)
	s.Equal("rotated", s.status().State)
}

func (s *keyRotationSuite) TestResendFailedVerificationKeepsTheOldKey() {
	s.env.OnActivity(krResend.VerifyAPIKey, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.VerifyAPIKeyInput) (*activities.VerifyAPIKeyOutput, error) {
			s.call("verify")
			return &activities.VerifyAPIKeyOutput{Valid: true, Restricted: true}, nil
		}).Once()
	res := s.run(contract.KeyRotationInput{Provider: "resend"})
	s.Equal(&contract.KeyRotationResult{State: "failed_verification"}, res)
	s.Equal([]string{"active resend/api_key", "create", "verify", "delete key_new", "notify key-rotation-failed"}, s.calls)
	s.Empty(s.stored)
}

func (s *keyRotationSuite) TestCrmflowTokenHandedOutOnce() {
	var got contract.KeyRotationToken
	s.update(time.Minute, contract.KeyRotationTokenUpdate, "", func(res any) {
		tok, ok := res.(contract.KeyRotationToken)
		s.Require().True(ok, "%T", res)
		got = tok
	}, contract.KeyRotationTokenRequest{Operator: "ops"})
	s.update(2*time.Minute, contract.KeyRotationTokenUpdate, "already handed out", nil,
		contract.KeyRotationTokenRequest{Operator: "mallory"})
	s.env.RegisterDelayedCallback(func() {
		s.NotContains(s.calls, "revoke v1", "the old token works during the grace period")
		s.NotContains(fmt.Sprint(s.status()), "tok_new")
	}, time.Hour)
	res := s.run(contract.KeyRotationInput{Provider: "crmflow", Grace: 2 * time.Hour})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal(contract.KeyRotationToken{Token: "tok_new", Version: 2}, got)
	s.Equal([]string{"active crmflow/api_token", "generate", "store", "activate v2", "revoke v1", "notify key-rotated"}, s.calls)
	s.Equal([]activities.StoreCredentialInput{{Provider: "crmflow", Name: "api_token", Secret: "tok_new"}}, s.stored)
}

func (s *keyRotationSuite) TestCrmflowTokenNotCollectedRollsBack() {
	res := s.run(contract.KeyRotationInput{Provider: "crmflow"})
	s.Equal(&contract.KeyRotationResult{State: "token_not_collected"}, res)
	s.Equal([]string{"active crmflow/api_token", "generate", "store", "activate v2", "activate v1", "revoke v2",
		"notify key-rotation-failed"}, s.calls)
}

func (s *keyRotationSuite) TestHumanInTheLoop() {
	submit := func(secret string) contract.SubmitKeyInput {
		return contract.SubmitKeyInput{Secret: secret, Operator: "ops"}
	}
	var answers []contract.SubmitKeyResult
	record := func(res any) { answers = append(answers, res.(contract.SubmitKeyResult)) }
	s.update(30*time.Minute, contract.KeyRotationSubmitKeyUpdate, "starts with sk_ or rk_", nil, submit("pk_live_publishable_key_123"))
	s.update(40*time.Minute, contract.KeyRotationSubmitKeyUpdate, "key is empty", nil, submit(""))
	s.update(50*time.Minute, contract.KeyRotationSubmitKeyUpdate, "whitespace", nil, submit("sk_live with spaces in it"))
	s.update(90*time.Minute, contract.KeyRotationSubmitKeyUpdate, "", record, submit(krBadStripeKey))
	s.update(100*time.Minute, contract.KeyRotationRevokedUpdate, "not waiting", nil, contract.KeyRevokedInput{Operator: "ops"})
	s.env.RegisterDelayedCallback(func() {
		s.Empty(s.stored, "an invalid key is not stored")
		s.Equal("awaiting-key", s.status().State)
	}, 110*time.Minute)
	s.update(150*time.Minute, contract.KeyRotationSubmitKeyUpdate, "", record, submit(krValidStripeKey))
	s.update(160*time.Minute, contract.KeyRotationSubmitKeyUpdate, "not waiting for a key", nil, submit(krValidStripeKey))
	s.env.RegisterDelayedCallback(func() {
		st := s.status()
		s.Equal("awaiting-revocation", st.State)
		s.NotContains(fmt.Sprint(st), krValidStripeKey)
		s.NotContains(s.calls, "revoke v1")
	}, 200*time.Minute)
	s.update(315*time.Minute, contract.KeyRotationRevokedUpdate, "", nil, contract.KeyRevokedInput{Operator: "ops"})

	res := s.run(contract.KeyRotationInput{Provider: "stripe", ReminderEvery: time.Hour})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal([]contract.SubmitKeyResult{{Reason: "invalid_api_key"}, {Valid: true}}, answers)
	s.Equal([]activities.StoreCredentialInput{{Provider: "stripe", Name: "api_key", Secret: krValidStripeKey}}, s.stored)
	s.Equal([]string{"active stripe/api_key", "notify key-rotation-needed",
		"notify key-rotation-reminder", "verify-key", "notify key-rotation-reminder", "verify-key",
		"store", "activate v2", "notify key-rotation-reminder", "notify key-rotation-reminder",
		"revoke v1", "notify key-rotated"}, s.calls)
	prefix := s.keyPrefix("stripe")
	var keys []string
	for _, n := range s.notified {
		keys = append(keys, strings.TrimPrefix(n.IdempotencyKey, prefix))
	}
	s.Equal([]string{"notify-needed", "reminder-1", "reminder-2", "reminder-3", "reminder-4", "notify-rotated"}, keys)
}

func (s *keyRotationSuite) TestUnknownProviderIsRejected() {
	s.env.SetStartWorkflowOptions(clientStartOptions(contract.KeyRotationID("nope")))
	s.env.ExecuteWorkflow(workflows.KeyRotation, contract.KeyRotationInput{Provider: "nope"})
	s.Require().True(s.env.IsWorkflowCompleted())
	s.ErrorContains(s.env.GetWorkflowError(), "has no key rotation")
}
