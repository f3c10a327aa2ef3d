package e2e_test

// A client in another language (TypeScript's @temporalio/client, the
// temporal CLI) speaks to crmflow's workflows with nothing but JSON: it
// starts and signals them with json/plain payloads in the shapes
// docs/workflows.md shows, and reads what the worker writes (sealed by the
// payload codec) through the codec endpoint's decode route. This test is
// such a client: a Temporal client with the SDK's default converter, raw
// JSON arguments, and HTTP calls to /codec/decode.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	querypb "go.temporal.io/api/query/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

// decodeViaCodec posts payloads to the fixture's /codec/decode with a
// service token, as a remote codec in any language does, and returns each
// decoded payload's JSON.
func (f *fixture) decodeViaCodec(payloads []*commonpb.Payload) []string {
	f.t.Helper()
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: payloads})
	require.NoError(f.t, err)
	req, err := http.NewRequest(http.MethodPost, f.url+"/codec/decode", bytes.NewReader(body))
	require.NoError(f.t, err)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	require.Equal(f.t, http.StatusOK, resp.StatusCode)
	var raw bytes.Buffer
	_, err = raw.ReadFrom(resp.Body)
	require.NoError(f.t, err)
	var out commonpb.Payloads
	require.NoError(f.t, protojson.Unmarshal(raw.Bytes(), &out))
	decoded := make([]string, 0, len(out.GetPayloads()))
	for _, p := range out.GetPayloads() {
		require.Equal(f.t, "json/plain", string(p.GetMetadata()["encoding"]), "decoded payloads are plain JSON")
		decoded = append(decoded, string(p.GetData()))
	}
	return decoded
}

// history reads a run's events through the raw service API, payloads as
// stored.
func foreignHistory(t *testing.T, c client.Client, workflowID string) []*historypb.HistoryEvent {
	t.Helper()
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		events = append(events, e)
	}
	return events
}

// TestForeignClientStartsQueriesAndSignals: an order confirmation started
// with JSON text and an ISO 8601 payment timeout waits that long, answers
// the status query in the documented shape, takes a payment signal written
// as JSON text and ends confirmed; a bad duration string fails the run
// with an error naming the field.
func TestForeignClientStartsQueriesAndSignals(t *testing.T) {
	f := newSealedFixture(t, fixtureOptions{})
	t.Log("fixture up")
	foreign := testenv.TemporalClient(t) // the SDK's default converter: json/plain, no codec
	ctx := t.Context()
	f.seedOrder("o-ts", "cus-ts")
	id := contract.OrderConfirmationID("o-ts")

	_, err := foreign.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: f.queue},
		contract.OrderConfirmationType, json.RawMessage(`{"order_id":"o-ts","payment_timeout":"PT2H"}`))
	require.NoError(t, err)

	// The status query, read as another language reads it: the answer is
	// sealed, and /codec/decode opens it.
	var status string
	require.Eventually(t, func() bool {
		resp, err := foreign.WorkflowService().QueryWorkflow(ctx, &workflowservice.QueryWorkflowRequest{
			Namespace: testenv.Temporal(t).Namespace(),
			Execution: &commonpb.WorkflowExecution{WorkflowId: id},
			Query:     &querypb.WorkflowQuery{QueryType: contract.StatusQuery},
		})
		if err != nil {
			return false
		}
		status = f.decodeViaCodec(resp.GetQueryResult().GetPayloads())[0]
		return bytes.Contains([]byte(status), []byte(`"await-payment"`))
	}, 30*time.Second, 100*time.Millisecond, "the run waits for its payment")
	assert.JSONEq(t, `{"step":"await-payment","state":"pending","parked":false}`, status)
	t.Logf("status answered: %s", status)

	var timer *historypb.TimerStartedEventAttributes
	for _, e := range foreignHistory(t, foreign, id) {
		if a := e.GetTimerStartedEventAttributes(); a != nil {
			timer = a
		}
	}
	require.NotNil(t, timer, "the payment wait is a timer")
	assert.Equal(t, 2*time.Hour, timer.GetStartToFireTimeout().AsDuration(), "PT2H reached the timer")

	require.NoError(t, foreign.SignalWorkflow(ctx, id, "", contract.PaymentSignal, json.RawMessage(
		`{"event_id":"evt_ts_1","succeeded":true,"payment_intent_id":"pi_o-ts","amount_cents":4200,"amount_received_cents":4200,"currency":"eur"}`)))
	var closed *historypb.HistoryEvent
	require.Eventually(t, func() bool {
		events := foreignHistory(t, foreign, id)
		closed = events[len(events)-1]
		return closed.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
	}, 60*time.Second, 100*time.Millisecond, "the run completes")
	result := closed.GetWorkflowExecutionCompletedEventAttributes().GetResult().GetPayloads()
	require.Len(t, result, 1)
	assert.Equal(t, "binary/encrypted", string(result[0].GetMetadata()["encoding"]), "the worker seals what it writes")
	assert.JSONEq(t, `{"state":"confirmed"}`, f.decodeViaCodec(result)[0])
	assert.Equal(t, "confirmed", f.orderStatus("o-ts"))
	t.Log("confirmed")

	// A duration no form reads: the run fails at once, naming the field.
	f.seedOrder("o-ts-bad", "cus-ts")
	badID := contract.OrderConfirmationID("o-ts-bad")
	run, err := foreign.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: badID, TaskQueue: f.queue},
		contract.OrderConfirmationType, json.RawMessage(`{"order_id":"o-ts-bad","payment_timeout":"24 hours"}`))
	require.NoError(t, err, "Temporal accepts any input; the worker reads it")
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	require.Error(t, run.Get(waitCtx, nil))
	var failed *historypb.WorkflowExecutionFailedEventAttributes
	for _, e := range foreignHistory(t, foreign, badID) {
		if a := e.GetWorkflowExecutionFailedEventAttributes(); a != nil {
			failed = a
		}
	}
	t.Log("bad input failed")
	require.NotNil(t, failed, "the run failed (rather than retrying its first task for ever)")
	// The failure converter seals messages too: the codec opens them.
	msg := failed.GetFailure().GetMessage()
	if attrs := failed.GetFailure().GetEncodedAttributes(); attrs != nil {
		msg = f.decodeViaCodec([]*commonpb.Payload{attrs})[0]
	}
	assert.Contains(t, msg, `payment_timeout: \"24 hours\" is not a duration`)
	assert.Equal(t, "pending", f.orderStatus("o-ts-bad"), "nothing changed")
}
