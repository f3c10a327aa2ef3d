package knock_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/crmflow/crmflow/internal/knock"
	"github.com/crmflow/crmflow/internal/testsupport/providerhttptest"
)

func TestDeleteUserSendsDeleteAndReadsNoContent(t *testing.T) {
	f := newFakeKnock(t, answer(http.StatusNoContent, nil, ""))
	require.NoError(t, f.Client().Users.Delete(context.Background(), "user 1/a"))

	req := f.Only(t)
	assert.Equal(t, http.MethodDelete, req.Method)
	assert.Equal(t, "/v1/users/user%201%2Fa", req.Path)
	assert.Empty(t, req.Body)
	assert.Equal(t, "Bearer "+testKey, req.Header.Get("Authorization"))
	assert.NotContains(t, req.Header, "Idempotency-Key", "Knock honours it on triggers only")
}

func TestDeleteUserTellsAMissingUserFromAWrongURL(t *testing.T) {
	missing := newFakeKnock(t, answer(http.StatusNotFound, nil,
		`{"code":"resource_missing","message":"The resource you requested does not exist","status":404,"type":"invalid_request_error"}`))
	err := missing.Client().Users.Delete(context.Background(), "user_1")
	require.Error(t, err)
	assert.True(t, knock.UserMissing(err), "Knock's own 404 about the user: already gone")

	router := newFakeKnock(t, answer(http.StatusNotFound, nil, `{"errors":{"detail":"404 Not Found"}}`))
	err = router.Client().Users.Delete(context.Background(), "user_1")
	require.Error(t, err)
	assert.False(t, knock.UserMissing(err), "the router's 404 says nothing about the user")

	other := newFakeKnock(t, answer(http.StatusUnauthorized, nil, `{"code":"api_key_missing","message":"no key","status":401,"type":"authentication_error"}`))
	assert.False(t, knock.UserMissing(other.Client().Users.Delete(context.Background(), "user_1")))
}

func TestDeleteUserRefusesAnEmptyID(t *testing.T) {
	f := newFakeKnock(t, answer(http.StatusNoContent, nil, ""))
	require.ErrorIs(t, f.Client().Users.Delete(context.Background(), ""), knock.ErrInvalidParams)
	assert.Empty(t, f.Requests())
}

func TestConsoleDeleteUserSendsNothing(t *testing.T) {
	rec := &providerhttptest.Recorder{}
	c := knock.NewConsole(rec)
	require.NoError(t, c.Users.Delete(context.Background(), "user_1"))
	require.Len(t, rec.Calls(), 1)
	assert.Equal(t, http.MethodDelete, rec.Calls()[0].Method)
	assert.Equal(t, "/v1/users/user_1", rec.Calls()[0].Path)
}
