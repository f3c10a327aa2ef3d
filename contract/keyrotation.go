package contract

import "time"

// Updates of a KeyRotation run.
const (
	// KeyRotationTokenUpdate hands the new crmflow start-API token to the
	// operator who asks, once; later calls are rejected ("already handed
	// out"). Input KeyRotationTokenRequest, result KeyRotationToken.
	KeyRotationTokenUpdate = "new-token"
	// KeyRotationSubmitKeyUpdate submits the new key of a human-in-the-loop
	// provider. Input SubmitKeyInput, result SubmitKeyResult.
	KeyRotationSubmitKeyUpdate = "submit-key"
	// KeyRotationRevokedUpdate confirms the old key was revoked at the
	// provider. Input KeyRevokedInput, result none.
	KeyRotationRevokedUpdate = "old-key-revoked"
	// KeyRotationTokenAckUpdate is an operator's word that the new start-API
	// token is in place, for when its first use cannot be awaited. Input
	// KeyRotationTokenRequest, result none.
	KeyRotationTokenAckUpdate = "token-acknowledged"
	// KeyRotationCancelUpdate ends a rotation that waits for an operator's
	// key, or for proof of a submitted webhook secret, changing nothing: a
	// submitted key is revoked, the old key stays active. Input
	// KeyRevokedInput (the operator), result none.
	KeyRotationCancelUpdate = "cancel"
)

// Signals of a KeyRotation run, each with a KeyVersion. crmflow's edge
// sends them; a repeated or stale one changes nothing.
const (
	// KeyRotationTokenSeenSignal: the new start-API token was used.
	KeyRotationTokenSeenSignal = "token-seen"
	// KeyRotationSecretProvenSignal: a genuine webhook delivery verified
	// with the submitted signing secret, beside the one in use.
	KeyRotationSecretProvenSignal = "secret-proven"
)

// KeyVersion names one stored version of the rotation's key.
type KeyVersion struct {
	Version int `json:"version"`
}

// Key rotations beyond the providers' API keys (ProviderStripe and the
// others name those).
const (
	// KeyRotationResend rotates Resend's API key automatically.
	KeyRotationResend = "resend"
	// KeyRotationCrmflow rotates crmflow's own start-API token automatically.
	KeyRotationCrmflow = "crmflow"
	// KeyRotationStripeWebhook rotates the signing secret of Stripe's
	// webhook endpoint, with an operator.
	KeyRotationStripeWebhook = "stripe_webhook"
	// KeyRotationClerkWebhook rotates the Svix signing secret of Clerk's
	// webhook endpoint, with an operator.
	KeyRotationClerkWebhook = "clerk_webhook"
)

// Defaults of KeyRotationInput.
const (
	DefaultKeyRotationGrace         = 24 * time.Hour
	DefaultKeyRotationReminderEvery = 24 * time.Hour
	// DefaultKeyRotationRemindersPerRun: with daily reminders, a rotation
	// waiting for an operator continues as new about once a month.
	DefaultKeyRotationRemindersPerRun = 30
)

// KeyRotationInput starts a provider's key rotation.
type KeyRotationInput struct {
	Provider string `json:"provider"`
	// Name is the credential's name in the store; "" means "api_key", or
	// "api_token" for provider "crmflow".
	Name string `json:"name,omitempty"`
	// Grace is how long the old key keeps working after the new one is
	// active (automatic rotations); 0 means DefaultKeyRotationGrace.
	Grace time.Duration `json:"grace,omitempty"`
	// ReminderEvery spaces reminders while an operator is awaited; 0 means
	// DefaultKeyRotationReminderEvery.
	ReminderEvery time.Duration `json:"reminder_every,omitempty"`
	// RequestedBy is who started the rotation ("schedule" or an operator).
	RequestedBy string `json:"requested_by,omitempty"`
	// RemindersPerRun is how many reminders one run sends while it waits
	// for an operator before it continues as new, so that a wait of months
	// keeps a short history; 0 means DefaultKeyRotationRemindersPerRun.
	RemindersPerRun int `json:"reminders_per_run,omitempty"`
	// Resume is where the previous run stopped when it continued as new;
	// nil for a rotation's first run.
	Resume *KeyRotationResume `json:"resume,omitempty"`
}

// KeyRotationResume is what a rotation waiting for an operator carries
// across continue-as-new: the wait it is in and what it already did. Only
// versions of keys travel, never keys.
type KeyRotationResume struct {
	// Phase is the wait: "awaiting-key", "awaiting-proof" (a submitted
	// webhook secret waits for a genuine delivery) or "awaiting-revocation".
	Phase string `json:"phase"`
	// OldVersion and OldExternalID are the key in use when the rotation
	// began, the one it retires.
	OldVersion    int    `json:"old_version"`
	OldExternalID string `json:"old_external_id,omitempty"`
	// NewVersion is the activated key's version (awaiting-revocation).
	NewVersion int `json:"new_version,omitempty"`
	// SubmittedVersion and SubmittedBy are the verified key waiting for its
	// proof (awaiting-proof) and the operator who submitted it.
	SubmittedVersion int    `json:"submitted_version,omitempty"`
	SubmittedBy      string `json:"submitted_by,omitempty"`
	// Reminders is how many reminders the rotation sent so far, over every
	// run, so that reminder steps keep counting up.
	Reminders int `json:"reminders"`
	// Detail is the status detail the rotation showed.
	Detail string `json:"detail,omitempty"`
}

// KeyRotationTriggerInput is a KeyRotationTrigger run's input: the
// provider whose rotation to start or join, and who asks ("schedule").
type KeyRotationTriggerInput struct {
	Provider    string `json:"provider"`
	RequestedBy string `json:"requested_by,omitempty"`
}

// KeyRotationTriggerResult names the rotation run the trigger started or
// joined.
type KeyRotationTriggerResult struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// KeyRotationResult is how a rotation ended: rotated, failed_verification,
// token_not_collected or skipped; NewVersion is the stored version, 0 if none
// was activated.
type KeyRotationResult struct {
	State      string `json:"state"`
	NewVersion int    `json:"new_version,omitempty"`
}

// KeyRotationTokenRequest is the KeyRotationTokenUpdate's input.
type KeyRotationTokenRequest struct {
	Operator string `json:"operator"`
}

// KeyRotationToken is the KeyRotationTokenUpdate's answer: the new token's
// version in the credential store, where the caller reads the token. (Runs
// started before tokens stayed out of histories answered with Token too.)
type KeyRotationToken struct {
	Token   string `json:"token,omitempty"`
	Version int    `json:"version"`
}

// SubmitKeyInput is the KeyRotationSubmitKeyUpdate's input: the version of
// the key the operator submitted, already stored (pending) in the
// credential store, so the key itself never enters a history. (Runs
// started before that took Secret instead.)
type SubmitKeyInput struct {
	Secret   string `json:"secret,omitempty"`
	Version  int    `json:"version,omitempty"`
	Operator string `json:"operator"`
}

// SubmitKeyResult is the KeyRotationSubmitKeyUpdate's answer. Valid means
// the provider accepted the key and the run goes on to store and activate
// it; otherwise Reason says why and the run waits for another key.
type SubmitKeyResult struct {
	Valid  bool   `json:"valid"`
	Reason string `json:"reason,omitempty"`
}

// KeyRevokedInput is the KeyRotationRevokedUpdate's input.
type KeyRevokedInput struct {
	Operator string `json:"operator"`
}
