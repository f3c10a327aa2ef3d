package providers

import (
	"strings"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/crmflow/crmflow/contract"
)

// Keys crmflow holds that are not API keys of a provider it calls: the
// webhook signing secrets (which only verify deliveries) and crmflow's own
// start-API token.

// stripeWebhook is the signing secret of Stripe's webhook endpoint. It
// cannot be checked with Stripe, only by its form.
var stripeWebhook = Provider{
	Name: contract.KeyRotationStripeWebhook, Title: "Stripe webhook secret",
	Key: Slot{contract.KeyRotationStripeWebhook, DefaultKeyName}, ConfigKey: "stripe.webhook_secret",
	Rotation: RotationManual, KeyPrefixes: []string{"whsec_"}, Webhook: true,
	checkForm: func(key string) string {
		if !strings.HasPrefix(key, "whsec_") {
			return "a Stripe webhook secret starts with whsec_"
		}
		return ""
	},
}

// clerkWebhook is the Svix signing secret of Clerk's webhook endpoint.
var clerkWebhook = Provider{
	Name: contract.KeyRotationClerkWebhook, Title: "Clerk webhook secret",
	Key: Slot{contract.KeyRotationClerkWebhook, DefaultKeyName}, ConfigKey: "clerk.webhook_secret",
	Rotation: RotationManual, KeyPrefixes: []string{"whsec_"}, Webhook: true,
	checkForm: svixSecretForm,
}

// svixSecretForm says why key is not a Svix signing secret, or "".
func svixSecretForm(key string) string {
	if _, err := svix.NewWebhook(key); err != nil {
		return "not a Svix signing secret (whsec_ followed by base64)"
	}
	return ""
}

// TokenName is the credential name of crmflow's start-API token.
const TokenName = "api_token"

// crmflowToken is crmflow's own start-API token, which crmflow generates
// and hands out once per rotation. Config seeds it with the first of
// api_tokens.
var crmflowToken = Provider{
	Name: contract.KeyRotationCrmflow, Title: "crmflow API token",
	Key: Slot{contract.KeyRotationCrmflow, TokenName}, ConfigKey: "api_tokens",
	Rotation: RotationToken,
}

// CrmflowToken is crmflow's own start-API token.
func CrmflowToken() Provider { return crmflowToken }

// resendWebhook is the Svix signing secret of Resend's webhook endpoint
// (delivery, bounce and complaint events). It rotates like Clerk's: an
// operator submits the new secret, which becomes active once a genuine
// delivery verified with it.
var resendWebhook = Provider{
	Name: contract.KeyRotationResendWebhook, Title: "Resend webhook secret",
	Key: Slot{contract.KeyRotationResendWebhook, DefaultKeyName}, ConfigKey: "resend.webhook_secret",
	Rotation: RotationManual, KeyPrefixes: []string{"whsec_"}, Webhook: true,
	checkForm: svixSecretForm,
}
