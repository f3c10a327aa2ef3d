package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"strings"

	"github.com/resend/resend-go/v3"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"

	"github.com/crmflow/crmflow/internal/emailtemplates"
	"github.com/crmflow/crmflow/internal/store"
)

// Statuses SendTemplatedEmail answers with (SendEmailOutput.Status).
const (
	// EmailStatusSent: Resend accepted the email (or console mode recorded it).
	EmailStatusSent = "sent"
	// EmailStatusSuppressed: the address is suppressed (a hard bounce or a
	// complaint); nothing was sent, and the emails row says why.
	EmailStatusSuppressed = "suppressed"
)

// resendMaxIdempotencyKey is the longest Idempotency-Key Resend accepts.
const resendMaxIdempotencyKey = 256

// EmailActivities send crmflow's transactional email: a template embedded
// in the binary (internal/emailtemplates), rendered here and sent through
// Resend with resend-go, each send recorded in the emails table.
//
// They share Resend's connection with the key rotation (Resend: its key
// source, base URL, HTTP client, console mode and recorder), so a rotated
// key is used at once and console mode is decided once, at start, for
// both. They run on Resend's activity queue, under its rate limit and
// breaker.
type EmailActivities struct {
	// Resend is how Resend is reached; its Console says console mode.
	Resend *ResendActivities
	// From is the sender, "Name <address>" (config resend.from). Outside
	// console mode a send without it fails: Resend requires one.
	From string
	// Store records each send and knows the suppressed addresses
	// (*store.Store).
	Store emailStore
	// Templates are the templates to render; nil means the embedded ones.
	Templates *emailtemplates.Set
}

// emailStore is what the email activities need of the database.
type emailStore interface {
	BeginEmail(ctx context.Context, e store.Email) (*store.Email, error)
	MarkEmailSent(ctx context.Context, idempotencyKey, providerID string, console bool) (*store.Email, error)
}

var _ emailStore = (*store.Store)(nil)

// SendEmailInput is one templated email to send. Its shape is fixed:
// other workflows (UserLifecycle) build it.
type SendEmailInput struct {
	// Template is the template's name, "payment-receipt" (latest version)
	// or "payment-receipt.v1".
	Template string `json:"template"`
	// To is the recipient's address ("a@example.com" or "Name <a@…>").
	To string `json:"to"`
	// Data fills the template; each template names the keys it requires.
	Data map[string]any `json:"data"`
	// IdempotencyKey is required and derived from the workflow (ID + step),
	// so a retried activity neither sends twice (Resend's Idempotency-Key)
	// nor records twice (the emails row's key). At most 256 characters.
	IdempotencyKey string `json:"idempotency_key"`
	// BusinessKey is what the email is about (an order or user id); it is
	// recorded and tagged, so the email can be found by it.
	BusinessKey string `json:"business_key"`
}

// SendEmailOutput is what became of the email.
type SendEmailOutput struct {
	// EmailID is Resend's id of the email ("console:" + the idempotency
	// key in console mode); "" when it was suppressed.
	EmailID string `json:"email_id"`
	// Status is EmailStatusSent or EmailStatusSuppressed.
	Status string `json:"status"`
}

// SendTemplatedEmail renders in.Template with in.Data and sends it to
// in.To through Resend, unless the address is suppressed.
//
// The emails row of in.IdempotencyKey decides: it is created before the
// send, suppressed (and nothing sent) when the address is on
// email_suppressions, else sending; a retry finds it and finishes that
// send with the same Idempotency-Key, so Resend answers with the email it
// already accepted instead of sending another. Rendering and input errors
// are permanent (ResendInvalidRequest); Resend's and the database's are
// classified as everywhere else.
func (a *EmailActivities) SendTemplatedEmail(ctx context.Context, in SendEmailInput) (*SendEmailOutput, error) {
	to, err := in.validate()
	if err != nil {
		return nil, err
	}
	templates := a.Templates
	if templates == nil {
		if templates, err = emailtemplates.Default(); err != nil {
			return nil, invalidResendInput("embedded templates: " + err.Error())
		}
	}
	msg, err := templates.Render(in.Template, in.Data)
	if err != nil {
		return nil, invalidResendInput(err.Error())
	}
	logger := log.With(activity.GetLogger(ctx), "template", msg.Template+"."+msg.Version, "businessKey", in.BusinessKey,
		"idempotencyKey", in.IdempotencyKey)

	row, err := a.Store.BeginEmail(ctx, store.Email{IdempotencyKey: in.IdempotencyKey, Recipient: to,
		Template: msg.Template, TemplateVersion: msg.Version, BusinessKey: in.BusinessKey, Subject: msg.Subject})
	if err != nil {
		return nil, classifyStore(err)
	}
	switch {
	case row.Recipient != to || row.Template != msg.Template:
		// One key, two emails: the caller's keys are not unique per send.
		return nil, permanent(providerResend, ErrTypeConflict, fmt.Errorf(
			"idempotency key %q was used for %s to another recipient or template", in.IdempotencyKey, row.Template))
	case row.Status == store.EmailSuppressed:
		logger.Info("resend: address suppressed; email not sent", "reason", row.StatusDetail)
		return &SendEmailOutput{Status: EmailStatusSuppressed}, nil
	case row.ProviderID != "":
		return &SendEmailOutput{EmailID: row.ProviderID, Status: EmailStatusSent}, nil
	}

	req := &resend.SendEmailRequest{From: a.From, To: []string{in.To}, Subject: msg.Subject, Html: msg.HTML, Text: msg.Text,
		Tags: emailTags(msg, in.BusinessKey)}
	id, console, err := a.send(ctx, req, in.IdempotencyKey)
	if err != nil {
		return nil, err
	}
	if _, err := a.Store.MarkEmailSent(ctx, in.IdempotencyKey, id, console); err != nil {
		// Resend has the email; the retry sends the same key again and
		// records the answer, which is this email again.
		return nil, classifyStore(err)
	}
	logger.Info("resend: email sent", "resendEmailID", id, "console", console)
	return &SendEmailOutput{EmailID: id, Status: EmailStatusSent}, nil
}

// send makes the one POST /emails, or records it in console mode, and
// returns Resend's id of the email.
func (a *EmailActivities) send(ctx context.Context, req *resend.SendEmailRequest, idempotencyKey string) (string, bool, error) {
	if a.Resend == nil {
		return "", false, credentialMissing(providerResend)
	}
	key, err := a.Resend.activeKey(ctx)
	if err != nil {
		return "", false, err
	}
	if key == "" {
		body, _ := json.Marshal(req)
		if err := a.Resend.record(ctx, http.MethodPost, "/emails", body); err != nil {
			return "", false, err
		}
		return "console:" + idempotencyKey, true, nil
	}
	if strings.TrimSpace(a.From) == "" {
		return "", false, invalidResendInput("no sender: set resend.from (CRMFLOW_RESEND_FROM), e.g. \"CRM <hello@example.com>\"")
	}
	c := a.Resend.client(key)
	var sent *resend.SendEmailResponse
	err = c.call(func() (err error) {
		sent, err = c.sdk.Emails.SendWithOptions(ctx, req, &resend.SendEmailOptions{IdempotencyKey: idempotencyKey})
		return err
	})
	if err != nil {
		return "", false, err
	}
	if sent == nil || sent.Id == "" {
		// The retry sends the same key; Resend answers with this email.
		return "", false, transient(providerResend, ErrTypeUnavailable, errors.New("send email: the answer has no id"), 0)
	}
	return sent.Id, false, nil
}

// validate refuses what can never be sent, and returns the address to
// record and check against the suppressions.
func (in SendEmailInput) validate() (string, error) {
	switch {
	case strings.TrimSpace(in.Template) == "":
		return "", invalidResendInput("template is empty")
	case strings.TrimSpace(in.IdempotencyKey) == "":
		return "", invalidResendInput("idempotency key is empty")
	case len(in.IdempotencyKey) > resendMaxIdempotencyKey:
		return "", invalidResendInput(fmt.Sprintf("idempotency key is longer than %d characters", resendMaxIdempotencyKey))
	}
	addr, err := mail.ParseAddress(in.To)
	if err != nil {
		return "", invalidResendInput(fmt.Sprintf("recipient %q is not an email address", in.To))
	}
	return store.NormalizeAddress(addr.Address), nil
}

// tagUnsafe matches what a Resend tag may not hold: only ASCII letters,
// digits, underscores and dashes, at most 256 of them.
var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// emailTags name the template, its version and the business key, so the
// email can be found in Resend's dashboard and its webhooks carry them.
// Characters a tag may not hold become underscores; the emails row keeps
// the exact business key.
func emailTags(msg *emailtemplates.Message, businessKey string) []resend.Tag {
	tags := []resend.Tag{{Name: "template", Value: tagValue(msg.Template)}, {Name: "template_version", Value: msg.Version}}
	if businessKey != "" {
		tags = append(tags, resend.Tag{Name: "business_key", Value: tagValue(businessKey)})
	}
	return tags
}

func tagValue(s string) string {
	s = tagUnsafe.ReplaceAllString(s, "_")
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}
