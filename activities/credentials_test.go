package activities_test

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/activities"
	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/testsupport/testenv"
)

func newCredentialActivities(t *testing.T) (*activities.CredentialActivities, *credentials.Store) {
	t.Helper()
	keys, err := credentials.NewKeyring(config.DevMasterKey)
	require.NoError(t, err)
	st := credentials.NewStore(testenv.Store(t), keys, credentials.Options{CacheTTL: -1})
	return &activities.CredentialActivities{Store: st}, st
}

func errType(t *testing.T, err error) string {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "got %v", err)
	return appErr.Type()
}

func TestCredentialRotationRoundTrip(t *testing.T) {
	ctx := context.Background()
	a, st := newCredentialActivities(t)
	const provider, name = "credtest", "api_key"

	none, err := a.ActiveCredential(ctx, activities.ActiveCredentialInput{Provider: provider, Name: name})
	require.NoError(t, err)
	require.Equal(t, &activities.ActiveCredentialOutput{}, none, "nothing active is version 0, not an error")

	v1, err := a.StoreCredential(ctx, activities.StoreCredentialInput{Provider: provider, Name: name, Secret: "old-secret", ExternalID: "key_old"})
	require.NoError(t, err)
	require.NoError(t, a.ActivateCredential(ctx, activities.CredentialRef{Provider: provider, Name: name, Version: v1.Version}))
	active, err := a.ActiveCredential(ctx, activities.ActiveCredentialInput{Provider: provider, Name: name})
	require.NoError(t, err)
	require.Equal(t, &activities.ActiveCredentialOutput{Version: v1.Version, ExternalID: "key_old"}, active)

	v2, err := a.StoreCredential(ctx, activities.StoreCredentialInput{Provider: provider, Name: name, Secret: "new-secret", ExternalID: "key_new"})
	require.NoError(t, err)
	require.Equal(t, v1.Version+1, v2.Version)
	got, err := st.Active(ctx, provider, name)
	require.NoError(t, err)
	require.Equal(t, "old-secret", got.Secret.Reveal(), "a stored version is pending until activated")

	ref2 := activities.CredentialRef{Provider: provider, Name: name, Version: v2.Version}
	require.NoError(t, a.ActivateCredential(ctx, ref2))
	require.NoError(t, a.ActivateCredential(ctx, ref2), "activating twice is a no-op")
	got, err = st.Active(ctx, provider, name)
	require.NoError(t, err)
	require.Equal(t, "new-secret", got.Secret.Reveal())
	valid, err := st.Valid(ctx, provider, name)
	require.NoError(t, err)
	require.Len(t, valid, 2, "the old version is retiring, still valid")

	ref1 := activities.CredentialRef{Provider: provider, Name: name, Version: v1.Version}
	require.NoError(t, a.RevokeCredential(ctx, ref1))
	require.NoError(t, a.RevokeCredential(ctx, ref1), "revoking twice is a no-op")
	valid, err = st.Valid(ctx, provider, name)
	require.NoError(t, err)
	require.Len(t, valid, 1)
	require.Equal(t, v2.Version, valid[0].Version)

	err = a.ActivateCredential(ctx, ref1)
	require.Equal(t, activities.ErrorType("Store", activities.ErrTypeConflict), errType(t, err), "a revoked version cannot come back")
	err = a.ActivateCredential(ctx, activities.CredentialRef{Provider: provider, Name: name, Version: 99})
	require.Equal(t, activities.ErrorType("Store", activities.ErrTypeNotFound), errType(t, err))
}

func TestStoreCredentialRejectsInvalidInput(t *testing.T) {
	a, _ := newCredentialActivities(t)
	ctx := context.Background()
	_, err := a.StoreCredential(ctx, activities.StoreCredentialInput{Provider: "credtest", Name: "api_key"})
	require.Equal(t, activities.ErrorType("Store", activities.ErrTypeInvalid), errType(t, err))
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.True(t, appErr.NonRetryable())
	_, err = a.StoreCredential(ctx, activities.StoreCredentialInput{Provider: "Bad/Provider", Name: "api_key", Secret: "s3cret-value"})
	require.Equal(t, activities.ErrorType("Store", activities.ErrTypeInvalid), errType(t, err))
	require.NotContains(t, err.Error(), "s3cret-value")
}

func TestGenerateCredentialToken(t *testing.T) {
	a := &activities.CredentialActivities{}
	ctx := context.Background()
	one, err := a.GenerateToken(ctx, activities.GenerateTokenInput{Bytes: 32})
	require.NoError(t, err)
	raw, err := base64.RawURLEncoding.DecodeString(one.Token)
	require.NoError(t, err)
	require.Len(t, raw, 32)
	two, err := a.GenerateToken(ctx, activities.GenerateTokenInput{})
	require.NoError(t, err)
	require.NotEqual(t, one.Token, two.Token)
	raw, err = base64.RawURLEncoding.DecodeString(two.Token)
	require.NoError(t, err)
	require.Len(t, raw, 32, "0 bytes means the default")
}

func TestVerifyKeyCredential(t *testing.T) {
	ctx := context.Background()
	v := &activities.KeyVerifier{Verify: func(_ context.Context, provider, secret string) (bool, string, error) {
		switch secret {
		case "sk_good":
			return true, "ignored", nil
		case "sk_down":
			return false, "", errors.New("connection refused")
		}
		return false, provider + " says invalid_api_key", nil
	}}
	out, err := v.VerifyKey(ctx, activities.VerifyKeyInput{Provider: "stripe", Secret: "sk_good"})
	require.NoError(t, err)
	require.Equal(t, &activities.VerifyKeyOutput{Valid: true}, out)
	out, err = v.VerifyKey(ctx, activities.VerifyKeyInput{Provider: "stripe", Secret: "sk_bad"})
	require.NoError(t, err)
	require.Equal(t, &activities.VerifyKeyOutput{Reason: "stripe says invalid_api_key"}, out)
	_, err = v.VerifyKey(ctx, activities.VerifyKeyInput{Provider: "stripe", Secret: "sk_down"})
	require.Equal(t, "KeyVerifierUnavailable", errType(t, err))
	_, err = (&activities.KeyVerifier{}).VerifyKey(ctx, activities.VerifyKeyInput{Provider: "stripe", Secret: "sk_good"})
	require.Equal(t, "KeyVerifierInvalidRequest", errType(t, err))
}
