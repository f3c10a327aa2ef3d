package workflows_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/suite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/workflows"
)

// storedKeysSuite runs rotations as new runs run them: keys stay in the
// credential store and only their versions travel through the run.
type storedKeysSuite struct{ rotationHarness }

func TestKeyRotationKeepsKeysInTheStore(t *testing.T) { suite.Run(t, new(storedKeysSuite)) }

func (s *storedKeysSuite) SetupTest() { s.setup() }

// signal sends a signal to the run at d.
func (s *storedKeysSuite) signal(d time.Duration, name string, arg any) {
	s.env.RegisterDelayedCallback(func() { s.env.SignalWorkflow(name, arg) }, d)
}

// at checks, at d, the run's state and that none of absent was called yet.
func (s *storedKeysSuite) at(d time.Duration, state string, absent ...string) {
	s.env.RegisterDelayedCallback(func() {
		s.Equal(state, s.status().State, "at %s", d)
		for _, a := range absent {
			s.NotContains(s.calls, a, "at %s", d)
		}
	}, d)
}

func (s *storedKeysSuite) TestResendKeyGoesStraightIntoTheStore() {
	res := s.run(contract.KeyRotationInput{Provider: "resend", Grace: time.Hour})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal([]string{"active resend/api_key", "create", "verify v2", "activate v2",
		"delete key_old", "revoke v1", "notify key-rotated"}, s.calls)
	s.Require().Len(s.created, 1)
	s.Equal(&activities.CredentialRef{Provider: "resend", Name: "api_key"}, s.created[0].StoreAs)
	s.Empty(s.stored, "no key travels through the run to be stored")
}

func (s *storedKeysSuite) TestTokenWaitsForItsFirstUse() {
	var fetched []contract.KeyRotationToken
	fetch := func(res any) { fetched = append(fetched, res.(contract.KeyRotationToken)) }
	s.update(time.Minute, contract.KeyRotationTokenUpdate, "", fetch, contract.KeyRotationTokenRequest{Operator: "alice"})
	// The answer may be lost: fetching again is fine until the token is used.
	s.update(2*time.Minute, contract.KeyRotationTokenUpdate, "", fetch, contract.KeyRotationTokenRequest{Operator: "alice"})
	s.signal(10*time.Minute, contract.KeyRotationTokenSeenSignal, contract.KeyVersion{Version: 7})
	s.at(20*time.Minute, "awaiting-token-use", "activate v2", "revoke v1")
	s.signal(30*time.Minute, contract.KeyRotationTokenSeenSignal, contract.KeyVersion{Version: 2})
	s.update(40*time.Minute, contract.KeyRotationTokenUpdate, "no new token", nil, contract.KeyRotationTokenRequest{Operator: "alice"})
	s.at(50*time.Minute, "grace", "revoke v1")

	res := s.run(contract.KeyRotationInput{Provider: "crmflow", Grace: 2 * time.Hour})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal([]contract.KeyRotationToken{{Version: 2}, {Version: 2}}, fetched, "only the version, never the token")
	s.Equal([]string{"active crmflow/api_token", "create-token crmflow/api_token", "activate v2", "revoke v1",
		"notify key-rotated"}, s.calls)
	s.Empty(s.stored)
}

func (s *storedKeysSuite) TestTokenAcknowledgedByAnOperator() {
	s.update(5*time.Minute, contract.KeyRotationTokenAckUpdate, "", nil, contract.KeyRotationTokenRequest{Operator: "bob"})
	res := s.run(contract.KeyRotationInput{Provider: "crmflow", Grace: time.Hour})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal([]string{"active crmflow/api_token", "create-token crmflow/api_token", "activate v2", "revoke v1",
		"notify key-rotated"}, s.calls)
}

func (s *storedKeysSuite) TestTokenNeverUsedIsRevokedAndTheOldOneStays() {
	res := s.run(contract.KeyRotationInput{Provider: "crmflow"})
	s.Equal(&contract.KeyRotationResult{State: "token_not_collected"}, res)
	s.Equal([]string{"active crmflow/api_token", "create-token crmflow/api_token", "revoke v2",
		"notify key-rotation-failed"}, s.calls, "the old token was never retired, so nothing is rolled back")
}

func (s *storedKeysSuite) TestOperatorSubmitsTheKeysVersion() {
	var answers []contract.SubmitKeyResult
	record := func(res any) { answers = append(answers, res.(contract.SubmitKeyResult)) }
	s.update(10*time.Minute, contract.KeyRotationSubmitKeyUpdate, "through crmflow's API or CLI", nil,
		contract.SubmitKeyInput{Secret: krValidStripeKey, Operator: "ops"})
	s.update(20*time.Minute, contract.KeyRotationSubmitKeyUpdate, "not both", nil,
		contract.SubmitKeyInput{Secret: krValidStripeKey, Version: krValidVersion, Operator: "ops"})
	s.update(30*time.Minute, contract.KeyRotationSubmitKeyUpdate, "", record, contract.SubmitKeyInput{Version: 3, Operator: "ops"})
	s.update(40*time.Minute, contract.KeyRotationSubmitKeyUpdate, "", record, contract.SubmitKeyInput{Version: krValidVersion, Operator: "ops"})
	s.at(50*time.Minute, "awaiting-revocation", "revoke v1")
	s.update(60*time.Minute, contract.KeyRotationCancelUpdate, "cannot be cancelled", nil, contract.KeyRevokedInput{Operator: "ops"})
	s.update(70*time.Minute, contract.KeyRotationRevokedUpdate, "", nil, contract.KeyRevokedInput{Operator: "ops"})

	res := s.run(contract.KeyRotationInput{Provider: "stripe", ReminderEvery: 24 * time.Hour})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal([]contract.SubmitKeyResult{{Reason: "invalid_api_key"}, {Valid: true}}, answers)
	s.Equal([]string{"active stripe/api_key", "notify key-rotation-needed", "verify-key v3", "verify-key v2",
		"activate v2", "revoke v1", "notify key-rotated"}, s.calls)
	s.Empty(s.stored)
}

func (s *storedKeysSuite) TestWebhookSecretActivatesOnlyOnProof() {
	s.update(10*time.Minute, contract.KeyRotationSubmitKeyUpdate, "", nil, contract.SubmitKeyInput{Version: krValidVersion, Operator: "ops"})
	s.at(20*time.Minute, "awaiting-proof", "activate v2")
	s.signal(30*time.Minute, contract.KeyRotationSecretProvenSignal, contract.KeyVersion{Version: 9})
	s.at(40*time.Minute, "awaiting-proof", "activate v2")
	s.signal(26*time.Hour, contract.KeyRotationSecretProvenSignal, contract.KeyVersion{Version: krValidVersion})
	s.at(27*time.Hour, "awaiting-revocation", "revoke v1")
	s.update(28*time.Hour, contract.KeyRotationRevokedUpdate, "", nil, contract.KeyRevokedInput{Operator: "ops"})

	res := s.run(contract.KeyRotationInput{Provider: "stripe_webhook", ReminderEvery: 24 * time.Hour})
	s.Equal(&contract.KeyRotationResult{State: "rotated", NewVersion: 2}, res)
	s.Equal([]string{"active stripe_webhook/api_key", "notify key-rotation-needed", "verify-key v2",
		"notify key-rotation-reminder", "activate v2", "revoke v1", "notify key-rotated"}, s.calls,
		"the wait for proof reminds, and nothing is activated before it")
}

func (s *storedKeysSuite) TestCancelledBeforeProofChangesNothing() {
	s.update(10*time.Minute, contract.KeyRotationSubmitKeyUpdate, "", nil, contract.SubmitKeyInput{Version: krValidVersion, Operator: "ops"})
	s.update(20*time.Minute, contract.KeyRotationCancelUpdate, "", nil, contract.KeyRevokedInput{Operator: "alice"})
	res := s.run(contract.KeyRotationInput{Provider: "clerk_webhook"})
	s.Equal(&contract.KeyRotationResult{State: "cancelled"}, res)
	s.Equal([]string{"active clerk_webhook/api_key", "notify key-rotation-needed", "verify-key v2", "revoke v2"}, s.calls,
		"the submitted secret is revoked; the one in use is untouched")
	s.Contains(fmt.Sprint(s.status()), "alice")
}

// TestPendingTokenOutlivesThePickupWait: the credential store accepts a
// rotation's pending token for longer than the rotation waits for its
// first use, so the wait, not the store, decides.
func TestPendingTokenOutlivesThePickupWait(t *testing.T) {
	if credentials.PendingTokenLifetime <= workflows.KeyRotationTokenPickupTimeout {
		t.Fatalf("pending tokens expire (%s) before the rotation stops waiting for them (%s)",
			credentials.PendingTokenLifetime, workflows.KeyRotationTokenPickupTimeout)
	}
}
