package contract

// DeadLetterDecisionUpdate is the Update operators send (through the HTTP
// API or `crmflow dlq`) to decide what a parked run does next.
const DeadLetterDecisionUpdate = "dead-letter-decision"

// Operator decisions on a parked step.
const (
	DecisionRetry = "retry"
	DecisionSkip  = "skip"
	DecisionAbort = "abort"
)

// DeadLetterDecision is the DeadLetterDecisionUpdate's input.
type DeadLetterDecision struct {
	// DeadLetterID must be the dead letter the run is parked on, so a stale
	// decision can never act on a later failure.
	DeadLetterID int64  `json:"dead_letter_id"`
	Action       string `json:"action"`
	Operator     string `json:"operator,omitempty"`
}

// DeadLetterDecisionResult is the DeadLetterDecisionUpdate's answer.
type DeadLetterDecisionResult struct {
	Step   string `json:"step"`
	Action string `json:"action"`
}

// ErrorTypeOperatorAborted is the failure type of a run an operator aborted.
const ErrorTypeOperatorAborted = "OperatorAborted"

// ErrorTypeNotParked is the type of a decision's rejection by a run that is
// not parked. The dead letter is written by an activity a moment before the
// run takes note of its result, so a decision sent in that moment is
// rejected this way and may be sent again.
const ErrorTypeNotParked = "NotParked"

// ParkedStep is the dead letter an entity's run was parked on when it
// continued as new (its history reached its bound while it waited): the
// next run takes the dead letter over, waits for the operator's decision
// on it and applies the decision to the same step.
type ParkedStep struct {
	DeadLetterID int64  `json:"dead_letter_id"`
	Step         string `json:"step"`
}
