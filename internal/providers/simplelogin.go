package providers

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/crmflow/crmflow/contract"
	slclient "github.com/crmflow/crmflow/internal/simplelogin"
)

// simpleLogin: email aliases, with a key an operator rotates in
// SimpleLogin's settings.
var simpleLogin = Provider{
	Name: contract.ProviderSimpleLogin, Title: "SimpleLogin",
	Key: Slot{contract.ProviderSimpleLogin, DefaultKeyName}, ConfigKey: "simplelogin.api_key", URLKey: "simplelogin.api_url",
	Queue: true, Rotation: RotationManual,
	Probe: "GET /api/user_info", check: checkSimpleLogin,
}

func checkSimpleLogin(ctx context.Context, hc *http.Client, apiURL, key string) (Verdict, error) {
	sl := slclient.NewClient(slclient.WithAPIKey(key), slclient.WithBaseURL(apiURL), slclient.WithHTTPClient(hc))
	_, err := sl.UserInfo(ctx)
	var se *slclient.Error
	switch {
	case err == nil:
		return verdict(true, http.StatusOK, ""), nil
	case !errors.As(err, &se):
		return Verdict{}, err
	case se.StatusCode == http.StatusUnauthorized || se.StatusCode == http.StatusForbidden:
		// SimpleLogin's messages ("Wrong api key", "Disabled account") are
		// meant to be shown as they are.
		return verdict(false, se.StatusCode, se.Message), nil
	default:
		return verdict(false, se.StatusCode, ""), fmt.Errorf("answered %s", statusLine(se.StatusCode))
	}
}

// NewSimpleLoginClient is SimpleLogin's client constructor: in console mode
// it records every call and answers from memory, otherwise it sends each
// with the key o.Key holds at the time.
func NewSimpleLoginClient(o ClientOptions) *slclient.Client {
	return slclient.NewClient(
		o.consoleOr("simplelogin"),
		slclient.WithBaseURL(o.BaseURL),
		slclient.WithHTTPClient(o.HTTPClient),
	)
}
