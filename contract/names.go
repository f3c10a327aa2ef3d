package contract

// TaskQueue is the task queue every crmflow workflow runs on.
const TaskQueue = "crmflow"

// DeploymentName is the Worker Deployment crmflow's workers join (Worker
// Versioning): each build is a version of it, identified by its build id,
// which is what `crmflow version` prints. Operators and tools name it to see
// the versions and to choose the current one.
const DeploymentName = "crmflow"

// ProviderTaskQueue names provider's activity task queue for workflows
// running on base: "crmflow" gives "crmflow-stripe". Deriving it from the
// workflow's own queue keeps test workers, each on a queue of its own, apart.
func ProviderTaskQueue(base, provider string) string {
	return base + "-" + provider
}

// Providers whose activities run on their own task queue, as they appear in
// task queue names, the CrmflowProvider search attribute and key-rotation
// workflow IDs. internal/providers is the one list of what each one is.
const (
	ProviderStripe      = "stripe"
	ProviderKnock       = "knock"
	ProviderSimpleLogin = "simplelogin"
	ProviderResend      = "resend"
)

// Workflow type names. Other programs start workflows by these names, so they
// never change.
const (
	OrderConfirmationType = "OrderConfirmation"
	ReferralRewardType    = "ReferralReward"
	LowStockAlertType     = "LowStockAlert"
	AliasLifecycleType    = "AliasLifecycle"
	KeyRotationType       = "KeyRotation"
	InventoryScanType     = "InventoryScan"
	DataRetentionType     = "DataRetention"
	StripeReconcileType   = "StripeReconcile"
	// KeyRotationTriggerType is what a key-rotation Schedule starts: it
	// starts the provider's KeyRotation at KeyRotationID, or joins the one
	// running there, and ends.
	KeyRotationTriggerType = "KeyRotationTrigger"
	UserLifecycleType      = "UserLifecycle"
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

// Workflow ID prefixes; an ID is the prefix, "/", and the business key, so a
// second start for the same key joins the first run.
const (
	orderConfirmationPrefix = "order-confirmation/"
	referralRewardPrefix    = "referral-reward/"
	lowStockPrefix          = "low-stock/"
	aliasPrefix             = "alias/"
	keyRotationPrefix       = "key-rotation/"
	userPrefix              = "user/"
)

// OrderConfirmationID is the workflow ID of the order's confirmation run.
func OrderConfirmationID(orderID string) string { return orderConfirmationPrefix + orderID }

// ReferralRewardID is the workflow ID of the referral's reward run.
func ReferralRewardID(referralID string) string { return referralRewardPrefix + referralID }

// LowStockID is the workflow ID of the SKU's low-stock entity.
func LowStockID(sku string) string { return lowStockPrefix + sku }

// AliasID is the workflow ID of the email alias's lifecycle entity.
func AliasID(aliasID string) string { return aliasPrefix + aliasID }

// UserID is the workflow ID of the Clerk user's lifecycle entity.
func UserID(clerkUserID string) string { return userPrefix + clerkUserID }

// KeyRotationID is the workflow ID of the provider's key rotation.
func KeyRotationID(provider string) string { return keyRotationPrefix + provider }

// KeyRotationScheduleID names the Schedule that starts provider's rotation.
func KeyRotationScheduleID(provider string) string { return "key-rotation-" + provider }

// KeyRotationTriggerID is the workflow ID the provider's rotation Schedule
// gives its KeyRotationTrigger runs; Temporal appends each run's scheduled
// time. The rotation itself always runs at KeyRotationID, where operators
// reach it.
func KeyRotationTriggerID(provider string) string { return "key-rotation-trigger/" + provider }

// InventoryScanScheduleID is the Temporal Schedule that runs InventoryScan.
const InventoryScanScheduleID = "inventory-scan"

// DataRetentionScheduleID is the Temporal Schedule that runs DataRetention.
const DataRetentionScheduleID = "data-retention"

// OrderRefundType handles one charge.refunded event for its order: it marks
// the order refunded or partially refunded and tells the customer.
const OrderRefundType = "OrderRefund"

// OrderRefundID is the workflow ID of the handling of one charge.refunded
// event (Stripe's event id): a redelivered or replayed event joins it.
func OrderRefundID(eventID string) string { return "order-refund/" + eventID }
