package activities

import (
	"context"
	"net/http"

	"go.temporal.io/sdk/activity"
)

// heartbeatKey marks a context whose provider calls each record a heartbeat.
type heartbeatKey struct{}

// heartbeatPerCall marks ctx so that every provider call made with it
// records an activity heartbeat first (HeartbeatEachCall). An activity that
// makes several calls uses it: its heartbeat timeout then only has to
// outlast one call's deadline, however many calls it makes, and a worker
// that died mid-way is noticed within that timeout instead of the whole
// StartToClose. Activities that record heartbeat details of their own (a
// checkpoint) must not use it: an empty heartbeat would replace the details.
func heartbeatPerCall(ctx context.Context) context.Context {
	return context.WithValue(ctx, heartbeatKey{}, true)
}

// HeartbeatEachCall returns a copy of hc (nil: a zero client) whose requests
// record an activity heartbeat before they are sent, when their context was
// marked by heartbeatPerCall inside an activity. Other requests pass
// through untouched. The SDK throttles heartbeats (at most one RPC per 80 %
// of the heartbeat timeout), so a call costs no extra round trip.
func HeartbeatEachCall(hc *http.Client) *http.Client {
	c := http.Client{}
	if hc != nil {
		c = *hc
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = heartbeatTransport{next: next}
	return &c
}

type heartbeatTransport struct{ next http.RoundTripper }

func (t heartbeatTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if on, _ := ctx.Value(heartbeatKey{}).(bool); on && activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx)
	}
	return t.next.RoundTrip(req)
}
