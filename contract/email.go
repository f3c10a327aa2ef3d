package contract

// EmailComplaintType alerts operators that a recipient marked one of
// crmflow's emails as spam (Resend's email.complained). The inbox starts
// it once the address is suppressed.
const EmailComplaintType = "EmailComplaint"

// EmailComplaintID is the workflow ID of the alert for one complained-about
// email (Resend's email id): a redelivered or replayed complaint joins or
// finds the run it started, so operators are alerted once.
func EmailComplaintID(emailID string) string { return "email-complaint/" + emailID }

// EmailComplaintInput is one spam complaint about an email crmflow sent.
type EmailComplaintInput struct {
	// EmailID is Resend's id of the email.
	EmailID string `json:"email_id"`
	// Addresses are the complaining recipients, now suppressed.
	Addresses []string `json:"addresses"`
	// EventID is the webhook delivery's id (the inbox row's event id).
	EventID string `json:"event_id"`
	// Template and BusinessKey say which email it was, as the emails row
	// records it; "" when crmflow has no row of the email.
	Template    string `json:"template,omitempty"`
	BusinessKey string `json:"business_key,omitempty"`
	// ComplainedAt is when Resend reported it (RFC 3339), "" if unknown.
	ComplainedAt string `json:"complained_at,omitempty"`
}

// EmailComplaintResult says how operators were told.
type EmailComplaintResult struct {
	// Status is "alerted", or "skipped" when an operator skipped the alert.
	Status string `json:"status"`
}
