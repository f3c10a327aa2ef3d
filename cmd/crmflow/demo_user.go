package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	svix "github.com/svix/svix-webhooks/go"

	"github.com/crmflow/crmflow/contract"
)

// newUser signs a user up: a signed Clerk user.created reaches the user's
// entity through the inbox, which writes the customer row (the demo seeds
// none for this user), identifies the user in Knock, welcomes them and
// claims their shadow aliases.
func (d *demo) newUser(ctx context.Context) error {
	userID := d.ids.user
	fmt.Fprintf(d.out, "\n3. Sign-up: Clerk tells crmflow about a new user, %s\n", userID)
	msgID := "msg_demo_" + d.ids.suffix + "_user"
	payload, header, err := signedClerkEvent(d.cfg.Clerk.WebhookSecret.Reveal(), msgID,
		demoClerkUser(userID, "carol+"+d.ids.suffix+"@example.com", time.Now()), time.Now())
	if err != nil {
		return err
	}
	const path = "/webhooks/clerk"
	header.Set("Content-Type", "application/json")
	code, body, err := d.do(ctx, http.MethodPost, path, payload, header)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return httpError("POST "+path, code, body)
	}
	fmt.Fprintf(d.out, "  POST %s user.created (%s) -> %d\n", path, msgID, code)
	_, err = d.waitForState(ctx, contract.UserID(userID), contract.UserActive)
	return err
}

// demoClerkUser is the user object of a Clerk user.created: one verified
// primary address.
func demoClerkUser(userID, email string, now time.Time) map[string]any {
	ms := now.UnixMilli()
	return map[string]any{
		"object": "user", "id": userID, "first_name": "Carol", "last_name": "(demo)",
		"created_at": ms, "updated_at": ms, "primary_email_address_id": "idn_demo",
		"email_addresses": []any{map[string]any{
			"id": "idn_demo", "object": "email_address", "email_address": email,
			"verification": map[string]any{"status": "verified", "strategy": "email_code"},
		}},
	}
}

// signedClerkEvent builds a Clerk user.created around user and signs it the
// way Clerk does (Svix, with Svix's own library). It returns the body and
// the svix-* headers.
func signedClerkEvent(secret, msgID string, user map[string]any, now time.Time) ([]byte, http.Header, error) {
	payload, err := json.Marshal(map[string]any{"type": "user.created", "object": "event", "data": user})
	if err != nil {
		return nil, nil, fmt.Errorf("encode clerk event: %w", err)
	}
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		return nil, nil, fmt.Errorf("clerk webhook secret: %w", err)
	}
	sig, err := wh.Sign(msgID, now, payload)
	if err != nil {
		return nil, nil, fmt.Errorf("sign clerk event: %w", err)
	}
	h := http.Header{}
	h.Set("svix-id", msgID)
	h.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("svix-signature", sig)
	return payload, h, nil
}
