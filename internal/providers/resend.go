package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/crmflow/crmflow/contract"
)

// resend: transactional email, with a key crmflow rotates itself through
// Resend's API-key API.
var resend = Provider{
	Name: contract.ProviderResend, Title: "Resend",
	Key: Slot{contract.ProviderResend, DefaultKeyName}, ConfigKey: "resend.api_key", URLKey: "resend.api_url",
	Queue: true, Rotation: RotationAutomatic,
	Probe: "GET /api-keys", check: checkResend,
}

// resendError is Resend's error body.
type resendError struct {
	Name string `json:"name"`
}

func checkResend(ctx context.Context, hc *http.Client, apiURL, key string) (Verdict, error) {
	code, body, err := get(ctx, hc, strings.TrimRight(apiURL, "/")+"/api-keys?limit=1", "Authorization", "Bearer "+key)
	if err != nil {
		return Verdict{}, err
	}
	var re resendError
	_ = json.Unmarshal(body, &re) // a body of another shape leaves Name empty
	switch {
	case code == http.StatusOK:
		return verdict(true, code, ""), nil
	case code == http.StatusUnauthorized && re.Name == "restricted_api_key":
		v := verdict(true, code, "restricted_api_key: a sending-only key; key rotation needs full_access to create and delete keys")
		v.Limited = true
		return v, nil
	case code == http.StatusForbidden && re.Name == "invalid_api_key",
		code == http.StatusUnauthorized && re.Name == "missing_api_key":
		return verdict(false, code, re.Name), nil
	case re.Name != "":
		return verdict(false, code, ""), fmt.Errorf("answered %s (%s)", statusLine(code), re.Name)
	default:
		return verdict(false, code, ""), fmt.Errorf("answered %s", statusLine(code))
	}
}
