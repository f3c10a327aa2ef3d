package e2e_test

import (
	"context"
	"fmt"
	"sync"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/activities"
)

// emailOutbox stands in for the email activities (Resend's, built on
// another branch; activities.EmailActivities is a placeholder here that
// always fails): a worker interceptor answers SendTemplatedEmail itself and
// records each email, so the tests see exactly what the workflows asked to
// send. Every other activity runs as it is.
type emailOutbox struct {
	interceptor.WorkerInterceptorBase
	mu   sync.Mutex
	sent []activities.SendEmailInput
	// refuse lists addresses Resend refuses, as it answers 422 to an
	// address it cannot send to: the activity fails non-retryably with the
	// type the Resend activities give a 4xx of that kind.
	refuse map[string]bool
}

// InterceptActivity wraps every activity the fixture's workers run.
func (o *emailOutbox) InterceptActivity(_ context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &emailInbound{outbox: o}
	i.Next = next
	return i
}

type emailInbound struct {
	interceptor.ActivityInboundInterceptorBase
	outbox *emailOutbox
}

func (i *emailInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if activity.GetInfo(ctx).ActivityType.Name != "SendTemplatedEmail" || len(in.Args) != 1 {
		return i.Next.ExecuteActivity(ctx, in)
	}
	email, ok := in.Args[0].(activities.SendEmailInput)
	if !ok {
		return nil, fmt.Errorf("SendTemplatedEmail called with %T", in.Args[0])
	}
	o := i.outbox
	o.mu.Lock()
	// Every call is kept, repeats included: a test counts calls, not emails.
	o.sent = append(o.sent, email)
	refused := o.refuse[email.To]
	o.mu.Unlock()
	if refused {
		return nil, temporal.NewNonRetryableApplicationError("Resend: 422 the to field is invalid",
			activities.ErrorType("Resend", activities.ErrTypeInvalid), nil)
	}
	// Anything not refused is sent by the real activity (console mode or
	// the fixture's Resend peer), so the emails table records it too.
	return i.Next.ExecuteActivity(ctx, in)
}

// to returns the calls made for an address, in order.
func (o *emailOutbox) to(address string) []activities.SendEmailInput {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []activities.SendEmailInput
	for _, e := range o.sent {
		if e.To == address {
			out = append(out, e)
		}
	}
	return out
}

// refuseTo makes Resend refuse sends to address from now on.
func (o *emailOutbox) refuseTo(address string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refuse == nil {
		o.refuse = map[string]bool{}
	}
	o.refuse[address] = true
}
