package contract

import "time"

// Signals an alias's lifecycle entity takes, each with an AliasCommand. They
// set state rather than toggle it, so a repeated command changes nothing.
const (
	// AliasDisableSignal makes the alias block the mail it receives.
	AliasDisableSignal = "disable"
	// AliasEnableSignal makes the alias forward mail again.
	AliasEnableSignal = "enable"
	// AliasDeleteSignal deletes the alias at SimpleLogin, scrubs its row and
	// ends the run. Clerk's user.deleted sends it to every alias of the user.
	AliasDeleteSignal = "delete"
	// AliasClaimSignal gives a shadow alias its customer (AliasCommand's
	// CustomerID) and cancels its expiry. Clerk's user.created sends it to
	// the shadow aliases made for the new user's email.
	AliasClaimSignal = "claim"
)

// Alias states, in Status.State and AliasLifecycleResult.State.
const (
	// AliasCreating: recorded, being created at SimpleLogin.
	AliasCreating = "creating"
	// AliasActive: created and forwarding mail.
	AliasActive = "active"
	// AliasDisabled: created and blocking mail.
	AliasDisabled = "disabled"
	// AliasDeleted: deleted at SimpleLogin, row scrubbed; the run ended.
	AliasDeleted = "deleted"
	// AliasExpired: an unclaimed shadow alias reached its TTL and was
	// deleted like AliasDeleted; the run ended.
	AliasExpired = "expired"
	// AliasSkipped: an operator skipped creating the alias at SimpleLogin;
	// the row was ended as deleted and the run ended without an alias.
	AliasSkipped = "skipped"
)

// Alias modes of AliasLifecycleInput.Mode.
const (
	// AliasModeRandom lets SimpleLogin pick the alias (the default).
	AliasModeRandom = "random"
	// AliasModeCustom builds the alias from AliasLifecycleInput.Prefix.
	AliasModeCustom = "custom"
)

// DefaultShadowTTL is how long a shadow alias waits to be claimed by its
// owner's sign-up before it expires.
const DefaultShadowTTL = 30 * 24 * time.Hour

// AliasCommand is the payload of every alias signal.
type AliasCommand struct {
	// EventID identifies the command (the inbox event or API request); a
	// redelivery with the same id is ignored. "" is never deduplicated.
	EventID string `json:"event_id"`
	// CustomerID is the claiming customer, for AliasClaimSignal only.
	CustomerID string `json:"customer_id,omitempty"`
}

// AliasLifecycleInput starts an alias's entity, or continues it.
type AliasLifecycleInput struct {
	AliasID string `json:"alias_id"`
	// CustomerID owns the alias; "" makes a shadow alias for Email that
	// expires after ShadowTTL unless claimed.
	CustomerID string `json:"customer_id,omitempty"`
	// Email is the address a shadow alias is made for (required then): the
	// owner's sign-up with it claims the alias.
	Email string `json:"email,omitempty"`
	// Mode is AliasModeRandom (the default) or AliasModeCustom.
	Mode string `json:"mode,omitempty"`
	// Prefix is a custom alias's first part; required for custom only.
	Prefix string `json:"prefix,omitempty"`
	// Hostname, optional, is the website the alias is for.
	Hostname string `json:"hostname,omitempty"`
	// ShadowTTL is how long a shadow alias waits for its claim; zero means
	// DefaultShadowTTL.
	ShadowTTL time.Duration `json:"shadow_ttl,omitempty"`
	// MaxHistoryEvents bounds a run's history before it continues as new;
	// zero means the workflow's default.
	MaxHistoryEvents int `json:"max_history_events,omitempty"`
	// State is the previous run's state when continuing as new; nil at
	// first, when the alias is created.
	State *AliasState `json:"state,omitempty"`
	// Parked is the dead letter the previous run waited on when it
	// continued as new; nil when it was not parked.
	Parked *ParkedStep `json:"parked,omitempty"`
}

// AliasState is what an alias's entity carries across continue-as-new.
type AliasState struct {
	// State is AliasActive or AliasDisabled (a run continues only when the
	// alias exists and has not ended).
	State         string `json:"state"`
	SimpleLoginID int64  `json:"simplelogin_id"`
	AliasEmail    string `json:"alias_email"`
	// CustomerID is the owner now: the input's, or the claimer's.
	CustomerID string `json:"customer_id,omitempty"`
	// Claimed is true once a shadow alias was claimed.
	Claimed bool `json:"claimed,omitempty"`
	// ExpiresAt is when an unclaimed shadow alias expires, absolute so the
	// deadline survives continue-as-new; zero for none.
	ExpiresAt time.Time `json:"expires_at"`
	// Seen are the latest command event ids, oldest first.
	Seen []string `json:"seen,omitempty"`
	// Pending are commands delivered to the previous run but not acted on,
	// in the order the new run handles them first.
	Pending []AliasPendingCommand `json:"pending,omitempty"`
}

// AliasPendingCommand is a signal carried across continue-as-new.
type AliasPendingCommand struct {
	Signal  string       `json:"signal"`
	Command AliasCommand `json:"command"`
}

// AliasLifecycleResult is how an alias ended: AliasDeleted, AliasExpired or
// AliasSkipped. It holds nothing personal.
type AliasLifecycleResult struct {
	State string `json:"state"`
}
