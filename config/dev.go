package config

import (
	"net"
	"slices"
)

// Dev defaults: documented, printed at start, and only ever applied by
// `crmflow dev` (and operator commands talking to its stack), so that
// `crmflow demo` works with no set-up. They are public, so they protect
// nothing: outside dev, Validate refuses them (devDefaultsInUse).
const (
	DevAPIToken            = "dev-api-token"
	DevStripeWebhookSecret = "whsec_crmflow_dev_stripe_secret"
	// DevClerkWebhookSecret is a Svix secret: "whsec_" plus base64 key bytes.
	DevClerkWebhookSecret = "whsec_Y3JtZmxvdy1kZXYtY2xlcmstd2ViaG9vay1rZXk="
	// DevResendWebhookSecret is a Svix secret, as Resend's webhooks are
	// signed: "whsec_" plus base64 key bytes.
	DevResendWebhookSecret = "whsec_Y3JtZmxvdy1kZXYtcmVzZW5kLXdlYmhvb2sta2V5"
	// DevResendFrom is Resend's own testing sender, which sends without a
	// verified domain (to the Resend account's own address only).
	DevResendFrom = "crmflow dev <onboarding@resend.dev>"
	// DevMasterKey is base64 of 32 bytes; it protects nothing of value.
	DevMasterKey = "Y3JtZmxvdy1kZXYtbWFzdGVyLWtleS0zMi1ieXRlcyE="
)

// applyDevDefaults fills in the documented dev secrets where none are set.
func (c *Config) applyDevDefaults() {
	if len(c.APITokens) == 0 {
		c.APITokens = []Secret{DevAPIToken}
	}
	if len(c.OperatorTokens) == 0 {
		c.OperatorTokens = []Secret{operatorEntry(DevOperator, DevOperatorToken)}
	}
	if c.Stripe.WebhookSecret == "" {
		c.Stripe.WebhookSecret = DevStripeWebhookSecret
	}
	if c.Clerk.WebhookSecret == "" {
		c.Clerk.WebhookSecret = DevClerkWebhookSecret
	}
	if c.Resend.WebhookSecret == "" {
		c.Resend.WebhookSecret = DevResendWebhookSecret
	}
	if c.Resend.From == "" {
		c.Resend.From = DevResendFrom
	}
	if c.MasterKey == "" {
		c.MasterKey = DevMasterKey
	}
	if len(c.CodecUIOrigins) == 0 {
		c.CodecUIOrigins = devUIOrigins(c.Dev.UIAddr)
	}
}

// devUIOrigins are the origins of the embedded Temporal UI at addr, so the
// UI can decode payloads through the codec endpoint wherever it listens.
func devUIOrigins(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	origins := []string{"http://" + net.JoinHostPort(host, port)}
	if host == "127.0.0.1" {
		origins = append(origins, "http://"+net.JoinHostPort("localhost", port))
	}
	return origins
}

// devDefaultsInUse lists the keys configured with one of the documented dev
// secrets. Anywhere but dev they would seal credentials and payloads under
// a published key, or accept deliveries and API calls signed with one.
// master_key_previous may hold DevMasterKey: it only opens what an earlier
// key sealed, which is how a store sealed under it is rewrapped.
func (c *Config) devDefaultsInUse() []string {
	var keys []string
	if c.MasterKey == DevMasterKey {
		keys = append(keys, "master_key")
	}
	if slices.Contains(c.APITokens, DevAPIToken) {
		keys = append(keys, "api_tokens")
	}
	for _, tok := range c.Operators() {
		if tok == DevOperatorToken {
			keys = append(keys, "operator_tokens")
			break
		}
	}
	if c.Stripe.WebhookSecret == DevStripeWebhookSecret {
		keys = append(keys, "stripe.webhook_secret")
	}
	if c.Clerk.WebhookSecret == DevClerkWebhookSecret {
		keys = append(keys, "clerk.webhook_secret")
	}
	if c.Resend.WebhookSecret == DevResendWebhookSecret {
		keys = append(keys, "resend.webhook_secret")
	}
	return keys
}
