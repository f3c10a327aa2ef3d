package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/internal/providerhttp"
	"github.com/crmflow/crmflow/internal/providers"
)

// TestProviderPoliciesAreSizedToTheirCalls: every provider activity's
// StartToClose holds its calls at their HTTP deadlines (the clients'
// timeouts in worker/activities.go), and a multi-call activity's heartbeat
// timeout outlasts one call but not the whole: a dead worker is noticed
// after one call's deadline, a slow but live one is not cut short.
func TestProviderPoliciesAreSizedToTheirCalls(t *testing.T) {
	for _, c := range []struct {
		name      string
		policy    activityPolicy
		calls     int
		perCall   time.Duration
		heartbeat bool
	}{
		{"stripe (one retrieval)", stripeOptions, 1, providers.StripeHTTPTimeout, false},
		{"stripe money (look-up pages and creation)", stripeMoneyOptions, 6, providers.StripeHTTPTimeout, true},
		{"knock (one trigger)", knockOptions, 1, providerhttp.DefaultTimeout, false},
		{"simplelogin (up to seven calls)", simpleLoginOptions, 7, providerhttp.DefaultTimeout, true},
	} {
		o := c.policy.options
		assert.GreaterOrEqual(t, o.StartToCloseTimeout, time.Duration(c.calls)*c.perCall, c.name)
		if !c.heartbeat {
			assert.Zero(t, o.HeartbeatTimeout, c.name)
			continue
		}
		assert.Greater(t, o.HeartbeatTimeout, c.perCall, c.name)
		assert.Less(t, o.HeartbeatTimeout, o.StartToCloseTimeout/2, c.name)
	}
}
