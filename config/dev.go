package config

// Dev defaults: documented, printed at start, and only ever applied by
// `crmflow dev`, so that `crmflow demo` works with no set-up.
const (
	DevAPIToken            = "dev-api-token"
	DevStripeWebhookSecret = "whsec_crmflow_dev_stripe_secret"
	// DevClerkWebhookSecret is a Svix secret: "whsec_" plus base64 key bytes.
	DevClerkWebhookSecret = "whsec_Y3JtZmxvdy1kZXYtY2xlcmstd2ViaG9vay1rZXk="
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
	if c.MasterKey == "" {
		c.MasterKey = DevMasterKey
	}
}
