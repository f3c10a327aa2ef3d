package codec_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/proto"

	"github.com/crmflow/crmflow/internal/codec"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

const (
	secretWorkflowName = "CodecSecretTest"
	secretSignal       = "new-key"
)

type secretInput struct{ APIKey string }

type secretResult struct{ Used, Signalled string }

// secretWorkflow moves the secret through every kind of payload: workflow
// input, activity input and result, a signal, an activity failure's message
// and the workflow result.
func secretWorkflow(ctx workflow.Context, in *secretInput) (*secretResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var res secretResult
	if err := workflow.ExecuteActivity(ctx, useKey, in).Get(ctx, &res.Used); err != nil {
		return nil, err
	}
	if err := workflow.ExecuteActivity(ctx, rejectKey, in).Get(ctx, nil); err == nil {
		return nil, errors.New("rejectKey should have failed")
	}
	workflow.GetSignalChannel(ctx, secretSignal).Receive(ctx, &res.Signalled)
	return &res, nil
}

func useKey(_ context.Context, in *secretInput) (string, error) { return "used " + in.APIKey, nil }

func rejectKey(_ context.Context, in *secretInput) error {
	return temporal.NewNonRetryableApplicationError("provider rejected key "+in.APIKey, "BadKey", nil)
}

// runSecretWorkflow runs secretWorkflow to completion through c (and a
// worker built from c) and returns its raw history, each event marshalled
// as the server stores it.
func runSecretWorkflow(t *testing.T, c client.Client, secret string) (*secretResult, [][]byte) {
	t.Helper()
	tq := testenv.TaskQueue(t)
	w := worker.New(c, tq, worker.Options{})
	w.RegisterWorkflowWithOptions(secretWorkflow, workflow.RegisterOptions{Name: secretWorkflowName})
	w.RegisterActivity(useKey)
	w.RegisterActivity(rejectKey)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: tq, TaskQueue: tq}, secretWorkflowName, &secretInput{APIKey: secret})
	require.NoError(t, err)
	require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), secretSignal, "signalled "+secret))
	var res secretResult
	require.NoError(t, run.Get(ctx, &res))

	var events [][]byte
	it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		raw, err := proto.Marshal(ev)
		require.NoError(t, err)
		events = append(events, raw)
	}
	require.NotEmpty(t, events)
	return &res, events
}

func countContaining(events [][]byte, s string) int {
	n := 0
	for _, ev := range events {
		if bytes.Contains(ev, []byte(s)) {
			n++
		}
	}
	return n
}

func TestHistoryHoldsNoClearTextSecret(t *testing.T) {
	base := testenv.TemporalClient(t)
	dc := codec.NewDataConverter(newKeyring(t, newKey(t)))
	enc, err := client.NewClientFromExisting(base, client.Options{
		Namespace:        testenv.Temporal(t).Namespace(),
		DataConverter:    dc,
		FailureConverter: codec.NewFailureConverter(dc),
		Logger:           log.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err)
	t.Cleanup(enc.Close)

	secret := newSecret(t, "re_")
	res, events := runSecretWorkflow(t, enc, secret)
	require.Equal(t, secretResult{Used: "used " + secret, Signalled: "signalled " + secret}, *res,
		"the workflow itself sees the clear text")
	require.Zero(t, countContaining(events, secret), "a history event holds the secret in clear text")
	require.GreaterOrEqual(t, countContaining(events, codec.MetadataEncodingEncrypted), 6,
		"input, activity inputs and result, signal and result are encrypted payloads")
	require.NotZero(t, countContaining(events, "Encoded failure"), "the failure message was moved into an encrypted payload")

	// The control: the same workflow without the codec leaks the secret, so
	// the assertion above can fail.
	plain, err := client.NewClientFromExisting(base, client.Options{
		Namespace:     testenv.Temporal(t).Namespace(),
		DataConverter: converter.GetDefaultDataConverter(),
		Logger:        log.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	})
	require.NoError(t, err)
	t.Cleanup(plain.Close)
	control := newSecret(t, "re_")
	_, events = runSecretWorkflow(t, plain, control)
	require.GreaterOrEqual(t, countContaining(events, control), 6)
}
