package contract

import (
	"slices"
	"time"
)

// UserEventSignal carries a Clerk user event (a UserEvent) to the user's
// entity (UserID). Every event type travels on this one signal because
// Temporal keeps the order of signals within one name only: the inbox hands
// a user's events off in order, and one name keeps them in that order.
const UserEventSignal = "clerk-user-event"

// Clerk user event types, in UserEvent.Type.
const (
	UserEventCreated = "user.created"
	UserEventUpdated = "user.updated"
	UserEventDeleted = "user.deleted"
)

// User states, in Status.State and UserLifecycleResult.State.
const (
	// UserActive: the customer row and the Knock user follow Clerk's data.
	UserActive = "active"
	// UserDeleted: the Knock user and the aliases are deleted, the customer
	// row is a scrubbed tombstone; the run ended and later events are late.
	UserDeleted = "deleted"
)

// Defaults of UserLifecycleInput's mailbox settings.
const (
	// DefaultMailboxCheck is how often a user's entity asks SimpleLogin
	// whether the mailbox for their new address is verified.
	DefaultMailboxCheck = time.Hour
	// DefaultMailboxVerifyWait is how long it keeps asking before it gives
	// up; the aliases keep forwarding to the mailbox they had.
	DefaultMailboxVerifyWait = 7 * 24 * time.Hour
)

// UserEvent is one Clerk user event as the edge read it: the payload of
// UserEventSignal. Created and updated events carry the user as Clerk sent
// it; a deleted event carries the ids only.
type UserEvent struct {
	// EventID is the Svix message id; a redelivery with the same id is
	// ignored.
	EventID string `json:"event_id"`
	// Type is UserEventCreated, UserEventUpdated or UserEventDeleted.
	Type string `json:"type"`
	// UserID is the Clerk user id, the customer id in crmflow.
	UserID string `json:"user_id"`
	// UpdatedAt is Clerk's updated_at of the user (Unix milliseconds): of
	// two snapshots the entity keeps the newer, whatever order they came in.
	UpdatedAt int64 `json:"updated_at,omitempty"`
	// Name is first and last name joined, "" when Clerk has neither.
	Name string `json:"name,omitempty"`
	// PrimaryEmail is the address Clerk marks primary, "" when none.
	PrimaryEmail string `json:"primary_email,omitempty"`
	// VerifiedEmails are the user's addresses whose verification status is
	// "verified", the primary one included when it is.
	VerifiedEmails []string `json:"verified_emails,omitempty"`
}

// UserLifecycleInput starts a Clerk user's entity, or continues it.
type UserLifecycleInput struct {
	// UserID is the Clerk user id.
	UserID string `json:"user_id"`
	// MailboxCheck is how often the mailbox of a new address is checked
	// for verification; zero means DefaultMailboxCheck.
	MailboxCheck time.Duration `json:"mailbox_check,omitempty"`
	// MailboxVerifyWait is how long the check goes on; zero means
	// DefaultMailboxVerifyWait.
	MailboxVerifyWait time.Duration `json:"mailbox_verify_wait,omitempty"`
	// MaxHistoryEvents bounds a run's history before it continues as new;
	// zero means the workflow's default.
	MaxHistoryEvents int `json:"max_history_events,omitempty"`
	// State is the previous run's state when continuing as new; nil at first.
	State *UserState `json:"state,omitempty"`
	// Parked is the dead letter the previous run waited on when it
	// continued as new; nil when it was not parked. The event it was
	// handling is the first of State.Pending.
	Parked *ParkedStep `json:"parked,omitempty"`
}

// UserState is what a user's entity carries across continue-as-new.
type UserState struct {
	// Name, PrimaryEmail and VerifiedEmails are the newest snapshot seen;
	// UpdatedAt is its Clerk updated_at (Unix milliseconds).
	Name           string   `json:"name,omitempty"`
	PrimaryEmail   string   `json:"primary_email,omitempty"`
	VerifiedEmails []string `json:"verified_emails,omitempty"`
	UpdatedAt      int64    `json:"updated_at,omitempty"`
	// KnownEmails are every verified address the user has had, so that a
	// deletion also deletes the unclaimed shadow aliases made for an
	// address they no longer have.
	KnownEmails []string `json:"known_emails,omitempty"`
	// Synced is true once the snapshot is in PostgreSQL and Knock.
	Synced bool `json:"synced,omitempty"`
	// Created is true once a user.created was handled.
	Created bool `json:"created,omitempty"`
	// Welcomed is true once the welcome email was sent (or skipped).
	Welcomed bool `json:"welcomed,omitempty"`
	// Forward is a move of the user's aliases to a new address's mailbox
	// that waits for SimpleLogin to verify the mailbox; nil when none.
	Forward *MailboxForward `json:"forward,omitempty"`
	// Mailboxes are the SimpleLogin mailboxes crmflow made or used for the
	// user's addresses; a deletion deletes them.
	Mailboxes []int64 `json:"mailboxes,omitempty"`
	// Seen are the latest event ids, oldest first.
	Seen []string `json:"seen,omitempty"`
	// Pending are events delivered to the previous run but not handled, in
	// order.
	Pending []UserEvent `json:"pending,omitempty"`
}

// MailboxForward is a pending move of the user's aliases to the mailbox of
// their new primary address.
type MailboxForward struct {
	// Email is the new address.
	Email string `json:"email"`
	// MailboxID is SimpleLogin's mailbox for it, not verified yet.
	MailboxID int64 `json:"mailbox_id"`
	// GiveUpAt ends the wait; the aliases then stay where they were.
	GiveUpAt time.Time `json:"give_up_at"`
}

// UserLifecycleResult is how a user's entity ended: UserDeleted. It holds
// nothing personal.
type UserLifecycleResult struct {
	State string `json:"state"`
}

// Clone returns a copy of the state that shares nothing with it.
func (s UserState) Clone() UserState {
	c := s
	c.VerifiedEmails = slices.Clone(s.VerifiedEmails)
	c.KnownEmails = slices.Clone(s.KnownEmails)
	c.Mailboxes = slices.Clone(s.Mailboxes)
	c.Seen = slices.Clone(s.Seen)
	c.Pending = slices.Clone(s.Pending)
	if s.Forward != nil {
		f := *s.Forward
		c.Forward = &f
	}
	return c
}

// UnmarshalJSON reads MailboxCheck and MailboxVerifyWait from nanoseconds
// or duration strings (see ParseDuration).
func (in *UserLifecycleInput) UnmarshalJSON(data []byte) error {
	type plain UserLifecycleInput
	return unmarshalWithDurations(data, (*plain)(in))
}
