package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/crmflow/crmflow/contract"
	knockclient "github.com/crmflow/crmflow/internal/knock"
)

// knock: notifications, with a key an operator rotates in Knock's
// dashboard.
var knock = Provider{
	Name: contract.ProviderKnock, Title: "Knock",
	Key: Slot{contract.ProviderKnock, DefaultKeyName}, ConfigKey: "knock.api_key", URLKey: "knock.api_url",
	Queue: true, Rotation: RotationManual, KeyPrefixes: []string{"sk_"},
	Probe: "GET /v1/users/" + KnockProbeUser, check: checkKnock,
}

// KnockProbeUser is the Knock user the key check reads. It need not exist:
// Knock answers 404 for an unknown user only after the key authenticated.
const KnockProbeUser = "crmflow-key-check"

// knockError is Knock's error body; a path its router does not know answers
// {"errors":{"detail":"404 Not Found"}} instead.
type knockError struct {
	Code   string          `json:"code"`
	Errors json.RawMessage `json:"errors"`
}

func checkKnock(ctx context.Context, hc *http.Client, apiURL, key string) (Verdict, error) {
	code, body, err := get(ctx, hc, strings.TrimRight(apiURL, "/")+"/v1/users/"+KnockProbeUser, "Authorization", "Bearer "+key)
	if err != nil {
		return Verdict{}, err
	}
	var ke knockError
	_ = json.Unmarshal(body, &ke) // a body of another shape leaves both fields empty
	switch {
	case code == http.StatusOK:
		return verdict(true, code, ""), nil
	case code == http.StatusNotFound && ke.Errors != nil:
		return verdict(false, code, ""), errors.New("the path is unknown to Knock's router: knock.api_url must be Knock's API origin (https://api.knock.app, without /v1)")
	case code == http.StatusNotFound:
		// The probe user does not exist, which Knock says only to a key it
		// accepted.
		return verdict(true, code, ""), nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return verdict(false, code, ke.Code), nil
	default:
		return verdict(false, code, ""), fmt.Errorf("answered %s", statusLine(code))
	}
}

// NewKnockClient is Knock's client constructor: in console mode it records
// every call, otherwise it sends each with the key o.Key holds at the time.
func NewKnockClient(o ClientOptions) *knockclient.Client {
	return knockclient.NewClient(
		o.consoleOr("knock"),
		knockclient.WithBaseURL(o.BaseURL),
		knockclient.WithHTTPClient(o.HTTPClient),
	)
}
