package activities_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/contract"
	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/simplelogin"
)

// TestProviderErrorTypeNames pins the error type name, and its
// retryability, that the Knock and SimpleLogin activities return for each
// answer of the provider. The names are recorded in workflow histories and
// dead letters and matched by alerts, so a change to classification must
// not rename one silently: the names are spelled out here, not built from
// the ErrType constants, and this table changes only on purpose.
func TestProviderErrorTypeNames(t *testing.T) {
	cases := []struct {
		status       int // 0: no answer at all (connection refused)
		knock, sl    string
		nonRetryable bool
	}{
		{400, "KnockInvalidRequest", "SimpleLoginInvalidRequest", true},
		{401, "KnockAuthFailed", "SimpleLoginAuthFailed", true},
		{403, "KnockAuthFailed", "SimpleLoginAuthFailed", true},
		{404, "KnockNotFound", "SimpleLoginNotFound", true},
		{408, "KnockUnavailable", "SimpleLoginUnavailable", false},
		{409, "KnockConflict", "SimpleLoginConflict", true},
		{422, "KnockInvalidRequest", "SimpleLoginInvalidRequest", true},
		{429, "KnockRateLimited", "SimpleLoginRateLimited", false},
		{500, "KnockUnavailable", "SimpleLoginUnavailable", false},
		{503, "KnockUnavailable", "SimpleLoginUnavailable", false},
		{0, "KnockUnavailable", "SimpleLoginUnavailable", false},
	}
	for _, tc := range cases {
		name := fmt.Sprint(tc.status)
		if tc.status == 0 {
			name = "network error"
		}
		t.Run("Knock/"+name, func(t *testing.T) {
			url := refusingURL(t)
			if tc.status != 0 {
				url = newFakeKnockAPI(t, tc.status, nil,
					fmt.Sprintf(`{"code":"test_error","message":"test answer","status":%d}`, tc.status)).URL
			}
			_, err := runNotify(t, knock.NewClient(knock.WithAPIKey(knockTestKey), knock.WithBaseURL(url)), validNotify())
			appErr := requireAppError(t, err)
			assert.Equal(t, tc.knock, appErr.Type(), "error: %v", err)
			assert.Equal(t, tc.nonRetryable, appErr.NonRetryable(), "NonRetryable(); error: %v", err)
		})
		t.Run("SimpleLogin/"+name, func(t *testing.T) {
			url := refusingURL(t)
			if tc.status != 0 {
				f := newFakeSimpleLogin(t)
				// The look-up before creating: an answer about a list, which
				// SimpleLogin's client reads as nothing but its status.
				f.failNext("POST /api/v2/aliases", slCanned{status: tc.status, body: `{"error":"test answer"}`})
				url = f.srv.URL
			}
			c := simplelogin.NewClient(simplelogin.WithAPIKey(slTestKey), simplelogin.WithBaseURL(url))
			_, err := runCreateAlias(t, c, activities.CreateAliasInput{AliasID: "a1", Mode: contract.AliasModeRandom})
			appErr := requireAppError(t, err)
			assert.Equal(t, tc.sl, appErr.Type(), "error: %v", err)
			assert.Equal(t, tc.nonRetryable, appErr.NonRetryable(), "NonRetryable(); error: %v", err)
		})
	}
}

// refusingURL is the URL of a server that has stopped: connecting to it is
// refused, so a call gets no answer at all.
func refusingURL(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	return srv.URL
}
