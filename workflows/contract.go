// Package workflows is crmflow's contract with every program that starts,
// signals or inspects its runs: the task queue, workflow type names, workflow
// ID builders, message names, search attributes, and (one file per workflow)
// the workflow code itself with its input and output structs. It does no I/O.
package workflows

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// TaskQueue is the task queue every crmflow workflow runs on.
const TaskQueue = "crmflow"

// Workflow type names. Other programs start workflows by these names, so they
// never change.
const (
	OrderConfirmationType = "OrderConfirmation"
	ReferralRewardType    = "ReferralReward"
	LowStockAlertType     = "LowStockAlert"
	AliasLifecycleType    = "AliasLifecycle"
	KeyRotationType       = "KeyRotation"
)

// StatusQuery is the query every workflow answers with its Status.
const StatusQuery = "status"

// Status is the answer to StatusQuery: where a run is and what state it is in.
type Status struct {
	// Step is the step the run is on or last finished, e.g. "await-payment".
	Step string `json:"step"`
	// State is the run's business state, e.g. "pending" or "confirmed".
	State string `json:"state"`
	// Parked is true while the run waits for an operator's dead-letter decision.
	Parked bool `json:"parked"`
	// Detail explains State where it needs explaining (reasons, errors).
	Detail string `json:"detail,omitempty"`
}

// Search attribute keys operators filter on in the Temporal UI and CLI.
var (
	OrderIDKey    = temporal.NewSearchAttributeKeyKeyword("CrmflowOrderID")
	CustomerIDKey = temporal.NewSearchAttributeKeyKeyword("CrmflowCustomerID")
	SKUKey        = temporal.NewSearchAttributeKeyKeyword("CrmflowSKU")
	AliasIDKey    = temporal.NewSearchAttributeKeyKeyword("CrmflowAliasID")
	ProviderKey   = temporal.NewSearchAttributeKeyKeyword("CrmflowProvider")
	ParkedKey     = temporal.NewSearchAttributeKeyBool("CrmflowParked")
	StepKey       = temporal.NewSearchAttributeKeyKeyword("CrmflowStep")
)

// SearchAttributes lists every custom search attribute with its type, for
// registering them on a namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		OrderIDKey.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		CustomerIDKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		SKUKey.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AliasIDKey.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		ProviderKey.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		ParkedKey.GetName():     enumspb.INDEXED_VALUE_TYPE_BOOL,
		StepKey.GetName():       enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}

// Workflow ID prefixes; an ID is the prefix, "/", and the business key, so a
// second start for the same key joins the first run.
const (
	orderConfirmationPrefix = "order-confirmation/"
	referralRewardPrefix    = "referral-reward/"
	lowStockPrefix          = "low-stock/"
	aliasPrefix             = "alias/"
	keyRotationPrefix       = "key-rotation/"
)

// OrderConfirmationID is the workflow ID of the order's confirmation run.
func OrderConfirmationID(orderID string) string { return orderConfirmationPrefix + orderID }

// ReferralRewardID is the workflow ID of the referral's reward run.
func ReferralRewardID(referralID string) string { return referralRewardPrefix + referralID }

// LowStockID is the workflow ID of the SKU's low-stock entity.
func LowStockID(sku string) string { return lowStockPrefix + sku }

// AliasID is the workflow ID of the email alias's lifecycle entity.
func AliasID(aliasID string) string { return aliasPrefix + aliasID }

// KeyRotationID is the workflow ID of the provider's key rotation.
func KeyRotationID(provider string) string { return keyRotationPrefix + provider }

// KeyRotationScheduleID names the Schedule that starts provider's rotation.
func KeyRotationScheduleID(provider string) string { return "key-rotation-" + provider }

// ValidateKey rejects business keys that would make ambiguous or unreadable
// workflow IDs: empty, too long, or holding "/", whitespace or control
// characters. kind names the key in the error ("order ID", "SKU").
func ValidateKey(kind, key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%s is empty", kind)
	case len(key) > 200:
		return fmt.Errorf("%s is longer than 200 bytes", kind)
	case strings.ContainsAny(key, "/\\"):
		return fmt.Errorf("%s %q must not contain a slash", kind, key)
	}
	for _, r := range key {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%s %q must not contain whitespace or control characters", kind, key)
		}
	}
	return nil
}

// ValidateOperator rejects an operator name that would be unreadable where
// it is recorded (a run's history, the dead-letter table, logs): empty,
// longer than 100 bytes, not UTF-8, or holding control characters.
func ValidateOperator(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("operator is empty")
	case len(name) > 100:
		return errors.New("operator is longer than 100 bytes")
	case !utf8.ValidString(name):
		return errors.New("operator is not UTF-8 text")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("operator %q holds a control character", name)
		}
	}
	return nil
}

// continueAsNewDue reports whether a long-lived entity should continue as
// new: Temporal suggests it, or the history passed maxEvents (zero means
// DefaultMaxHistoryEvents).
func continueAsNewDue(ctx workflow.Context, maxEvents int) bool {
	if maxEvents <= 0 {
		maxEvents = DefaultMaxHistoryEvents
	}
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > maxEvents
}
