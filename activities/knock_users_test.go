package activities_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/internal/knock"
)

// runKnockUser runs IdentifyUser or DeleteUser on client.
func runKnockUser(t *testing.T, client *knock.Client, fn func(*activities.KnockActivities) any, in any) (*activities.KnockUserOutput, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	a := &activities.KnockActivities{Knock: client}
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(fn(a), in)
	if err != nil {
		return nil, err
	}
	var out activities.KnockUserOutput
	require.NoError(t, val.Get(&out))
	return &out, nil
}

func identify(a *activities.KnockActivities) any   { return a.IdentifyUser }
func deleteUser(a *activities.KnockActivities) any { return a.DeleteUser }

func TestIdentifyUserPutsEmailAndName(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusOK, nil,
		`{"__typename":"User","id":"user_1","email":"ada@example.com","name":"Ada","updated_at":"2026-08-01T10:00:00Z"}`)
	_, err := runKnockUser(t, f.Client(), identify, activities.IdentifyUserInput{UserID: "user_1", Email: "ada@example.com", Name: "Ada"})
	require.NoError(t, err)
	req := f.Only(t)
	assert.Equal(t, "PUT /v1/users/user_1", req.Method+" "+req.Path)
	assert.JSONEq(t, `{"email":"ada@example.com","name":"Ada"}`, string(req.Body))
	assert.NotContains(t, req.Header, "Idempotency-Key")
}

func TestDeleteUserCountsAMissingUserAsDeleted(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusNoContent, nil, "")
	out, err := runKnockUser(t, f.Client(), deleteUser, activities.DeleteUserInput{UserID: "user_1"})
	require.NoError(t, err)
	assert.False(t, out.Missing)
	req := f.Only(t)
	assert.Equal(t, "DELETE /v1/users/user_1", req.Method+" "+req.Path)

	gone := newFakeKnockAPI(t, http.StatusNotFound, nil,
		`{"code":"resource_missing","message":"The resource you requested does not exist","status":404,"type":"invalid_request_error"}`)
	out, err = runKnockUser(t, gone.Client(), deleteUser, activities.DeleteUserInput{UserID: "user_1"})
	require.NoError(t, err, "a retry after a lost answer finds the user gone")
	assert.True(t, out.Missing)
}

func TestKnockUserErrorsAreClassified(t *testing.T) {
	cases := []struct {
		name, body   string
		status       int
		wantType     string
		nonRetryable bool
	}{
		{"router 404 is no proof of deletion", `{"errors":{"detail":"404 Not Found"}}`, 404, "KnockNotFound", true},
		{"bad key", `{"code":"api_key_missing","message":"no key","status":401,"type":"authentication_error"}`, 401, "KnockAuthFailed", true},
		{"rate limited", `{"code":"rate_limit_exceeded","message":"slow down","status":429}`, 429, "KnockRateLimited", false},
		{"outage", `{"code":"internal_error","message":"boom","status":500}`, 500, "KnockUnavailable", false},
	}
	for _, tc := range cases {
		for name, fn := range map[string]func(*activities.KnockActivities) any{"identify": identify, "delete": deleteUser} {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				f := newFakeKnockAPI(t, tc.status, nil, tc.body)
				var in any = activities.DeleteUserInput{UserID: "user_1"}
				if name == "identify" {
					in = activities.IdentifyUserInput{UserID: "user_1", Email: "a@example.com"}
				}
				_, err := runKnockUser(t, f.Client(), fn, in)
				appErr := requireAppError(t, err)
				assert.Equal(t, tc.wantType, appErr.Type())
				assert.Equal(t, tc.nonRetryable, appErr.NonRetryable())
			})
		}
	}
}

func TestKnockUserActivitiesRefuseAnEmptyUserID(t *testing.T) {
	f := newFakeKnockAPI(t, http.StatusNoContent, nil, "")
	_, err := runKnockUser(t, f.Client(), deleteUser, activities.DeleteUserInput{UserID: " "})
	requirePermanent(t, err, "KnockInvalidRequest")
	_, err = runKnockUser(t, f.Client(), identify, activities.IdentifyUserInput{})
	requirePermanent(t, err, "KnockInvalidRequest")
	assert.Empty(t, f.Requests())
}
