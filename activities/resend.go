package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/resend/resend-go/v3"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"

	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/store"
)

// providerResend names Resend in error types: "ResendAuthFailed".
const providerResend = "Resend"

// ErrTypeQuotaExceeded: Resend's daily or monthly quota is used up (a 429
// that waiting seconds does not cure), so it is permanent, unlike
// RateLimited. It is declared here rather than with the others because only
// Resend reports it so far.
const ErrTypeQuotaExceeded = "QuotaExceeded"

// The credential the Resend activities authenticate with, as the credential
// store names it; the same names as the config keys that seed the store
// (resend.api_key).
const (
	// ResendCredentialProvider is the store's provider name for Resend.
	ResendCredentialProvider = "resend"
	// ResendCredentialName is the store's name for Resend's API key.
	ResendCredentialName = "api_key"
)

// ResendKeyNamePrefix starts the name of every Resend API key crmflow
// creates. CreateAPIKey deletes existing keys that carry the name it is asked
// to create, so it refuses names without this prefix: a key a person made in
// the Resend dashboard can never be deleted by a rotation.
const ResendKeyNamePrefix = "crmflow-"

// Permissions of a Resend API key, for CreateAPIKeyInput.Permission.
const (
	// ResendFullAccess can create, read, update and delete every resource,
	// API keys included: the active key must have it, or the next rotation
	// cannot create its successor.
	ResendFullAccess = "full_access"
	// ResendSendingAccess can only send email.
	ResendSendingAccess = "sending_access"
)

// ResendDefaultBaseURL is Resend's API, used when ResendActivities.BaseURL is
// empty. Setting it here, rather than leaving the SDK's default, keeps the
// SDK's RESEND_BASE_URL environment variable from silently redirecting calls.
const ResendDefaultBaseURL = "https://api.resend.com"

// ResendActivities create, verify and delete Resend API keys: the Resend part
// of the KeyRotation workflow, built on Resend's Go SDK (resend-go).
//
// Keys rotate, so no SDK client is kept: each call asks Keys for the active
// key and builds a client for it. In console mode (Console, set by the
// worker at start for a Resend with no configured key) nothing is sent,
// each call goes to Recorder (or the activity log) and labelled fake values
// come back, so the rotation workflow runs the same way without a Resend
// account. Outside console mode a missing key is never answered that way:
// the call fails with a non-retryable ResendCredentialMissing.
type ResendActivities struct {
	// Console is console mode, decided at start; Keys is then never asked.
	Console bool
	// Keys hands out the key the activities authenticate with.
	Keys KeySource
	// BaseURL is Resend's API; empty means ResendDefaultBaseURL. Tests point
	// it at a fake.
	BaseURL string
	// HTTPClient sends the requests; nil means a client with a 30 s timeout.
	// Its timeout should stay below the activities' StartToCloseTimeout.
	HTTPClient *http.Client
	// Recorder receives console mode's calls; nil logs them at info level.
	Recorder ResendRecorder
	// Store keeps the keys the rotation creates (*credentials.Store): a new
	// key goes straight from Resend's answer into it, so it never travels
	// through a workflow history.
	Store resendKeyStore
}

// resendKeyStore is what the Resend activities need of the credential store.
type resendKeyStore interface {
	PutWithExternalID(ctx context.Context, provider, name, secret, externalID, status string) (int, error)
	ByExternalID(ctx context.Context, provider, name, externalID string) (credentials.Credential, error)
	Version(ctx context.Context, provider, name string, version int) (credentials.Credential, error)
}

var _ resendKeyStore = (*credentials.Store)(nil)

// CreateAPIKeyInput is the Resend API key to create.
type CreateAPIKeyInput struct {
	// Name must be unique to the rotation attempt and start with
	// ResendKeyNamePrefix: ResendKeyName(rotation id) gives one. An existing
	// key of that name is taken for a leftover of this attempt and deleted.
	Name string `json:"Name"`
	// Permission is ResendFullAccess or ResendSendingAccess.
	Permission string `json:"Permission"`
	// StoreAs, when set, stores the new key as a pending version there and
	// leaves Token out of the answer. (Runs started before keys stayed out
	// of histories leave it nil and take Token.)
	StoreAs *CredentialRef `json:"store_as,omitempty"`
}

// CreateAPIKeyOutput is the key Resend created.
type CreateAPIKeyOutput struct {
	// KeyID is Resend's id of the key, the handle for deleting it later, or
	// "console:" plus the name in console mode.
	KeyID string `json:"KeyID"`
	// Token is the key itself. Resend shows it only in this answer, so the
	// workflow must hand it straight to the credential store; it never
	// prints (see ResendToken).
	Token ResendToken `json:"Token"`
	// Console is true when nothing was sent to Resend.
	Console bool `json:"Console"`
	// Version is the version the key was stored as, with StoreAs.
	Version int `json:"version,omitempty"`
}

// LogValue leaves the token out when slog logs the whole output; slog would
// otherwise render the struct as JSON, which carries the token's value.
func (o CreateAPIKeyOutput) LogValue() slog.Value {
	return slog.GroupValue(slog.String("KeyID", o.KeyID), slog.Any("Token", o.Token), slog.Bool("Console", o.Console))
}

// VerifyAPIKeyInput is the key to check.
type VerifyAPIKeyInput struct {
	// Token is the key to check; it authenticates the check itself. Runs
	// started before keys stayed out of histories set it; newer ones set
	// Key instead.
	Token ResendToken `json:"Token"`
	// Key is the stored version of the key to check.
	Key *CredentialRef `json:"key,omitempty"`
}

// LogValue leaves the token out when slog logs the whole input.
func (in VerifyAPIKeyInput) LogValue() slog.Value {
	return slog.GroupValue(slog.Any("Token", in.Token))
}

// VerifyAPIKeyOutput says whether Resend accepts a key.
type VerifyAPIKeyOutput struct {
	// Valid is true when Resend authenticated the key.
	Valid bool `json:"Valid"`
	// Restricted is true for a valid key limited to sending email: it cannot
	// create or delete keys, so it cannot serve as the rotating key.
	Restricted bool `json:"Restricted"`
	// Reason is Resend's error name when Valid is false, such as
	// "invalid_api_key", for the audit trail.
	Reason string `json:"Reason"`
	// Console is true when nothing was sent to Resend.
	Console bool `json:"Console"`
}

// DeleteAPIKeyInput names the Resend API key to delete.
type DeleteAPIKeyInput struct {
	// KeyID is Resend's id of the key.
	KeyID string `json:"KeyID"`
}

// ResendKeyName is the name of the key a rotation creates: unique per
// rotation, so a retried creation recognises the key an earlier attempt of
// the same rotation left behind.
func ResendKeyName(rotationID string) string { return ResendKeyNamePrefix + rotationID }

// CreateAPIKey creates a Resend API key named in.Name.
//
// Resend has no idempotency key for POST /api-keys, and the token is shown
// only in the answer to the creation, so a retry after a lost answer cannot
// recover it: it lists the keys first, deletes any key already called in.Name
// (the invisible leftover of an earlier attempt, whose token nobody holds),
// and then creates the key. A retry therefore never leaves a usable key
// behind that crmflow cannot see, at the cost of one list call per attempt.
func (a *ResendActivities) CreateAPIKey(ctx context.Context, in CreateAPIKeyInput) (*CreateAPIKeyOutput, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	logger := log.With(activity.GetLogger(ctx), "resendKeyName", in.Name, "permission", in.Permission)
	key, err := a.activeKey(ctx)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(resend.CreateApiKeyRequest{Name: in.Name, Permission: in.Permission})
	if key == "" {
		if err := a.record(ctx, http.MethodPost, "/api-keys", body); err != nil {
			return nil, err
		}
		return a.keep(ctx, in, &CreateAPIKeyOutput{KeyID: "console:" + in.Name, Token: ResendToken("console:" + in.Name + ":token"), Console: true})
	}

	c := a.client(key)
	stale, err := c.keysNamed(ctx, in.Name)
	if err != nil {
		return nil, err
	}
	for _, id := range stale {
		logger.Warn("resend: deleting the key an earlier attempt created; its token was lost", "resendKeyID", id)
		if err := c.deleteKey(ctx, id); err != nil {
			return nil, err
		}
	}

	var created resend.CreateApiKeyResponse
	err = c.call(func() (err error) {
		created, err = c.sdk.ApiKeys.CreateWithContext(ctx, &resend.CreateApiKeyRequest{Name: in.Name, Permission: in.Permission})
		return err
	})
	if err != nil {
		return nil, err
	}
	if created.Id == "" || created.Token == "" {
		// The key may exist; the next attempt finds it by name and deletes it.
		return nil, transient(providerResend, ErrTypeUnavailable, errors.New("create API key: the answer lacks the id or the token"), 0)
	}
	logger.Info("resend: API key created", "resendKeyID", created.Id, "replacedLeftovers", len(stale))
	return a.keep(ctx, in, &CreateAPIKeyOutput{KeyID: created.Id, Token: ResendToken(created.Token)})
}

// keep stores a created key as a pending version when in asks for it, and
// leaves the key out of the answer then. A retry after the store failed
// creates the key at Resend again (the earlier one, never stored, is
// deleted by name), so nothing is lost.
func (a *ResendActivities) keep(ctx context.Context, in CreateAPIKeyInput, out *CreateAPIKeyOutput) (*CreateAPIKeyOutput, error) {
	if in.StoreAs == nil {
		return out, nil
	}
	if a.Store == nil {
		return nil, invalidResendInput("no credential store to keep the new key in")
	}
	ref := *in.StoreAs
	if c, err := a.Store.ByExternalID(actorCtx(ctx), ref.Provider, ref.Name, out.KeyID); err == nil {
		out.Version = c.Version
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, classifyCredential(err)
	} else {
		v, err := a.Store.PutWithExternalID(actorCtx(ctx), ref.Provider, ref.Name, out.Token.Reveal(), out.KeyID, credentials.StatusPending)
		if err != nil {
			return nil, classifyCredential(err)
		}
		out.Version = v
	}
	out.Token = ""
	return out, nil
}

// VerifyAPIKey checks in.Token with the cheapest authenticated read Resend
// has, GET /domains?limit=1 (there is no whoami). A 200 means valid; 401
// restricted_api_key means valid but limited to sending, which still proves
// the key exists. 403 invalid_api_key and 401 missing_api_key mean Resend
// does not know the key: that is an answer (Valid false), not an error, so
// the workflow can keep the old key and report.
func (a *ResendActivities) VerifyAPIKey(ctx context.Context, in VerifyAPIKeyInput) (*VerifyAPIKeyOutput, error) {
	if in.Key != nil {
		if a.Store == nil {
			return nil, invalidResendInput("no credential store to read the new key from")
		}
		c, err := a.Store.Version(ctx, in.Key.Provider, in.Key.Name, in.Key.Version)
		if err != nil {
			return nil, classifyCredential(err)
		}
		in.Token = ResendToken(c.Secret.Reveal())
	}
	if !validResendToken(in.Token.Reveal()) {
		// A token with spaces or control characters cannot be a Resend key,
		// and net/http would refuse to send it in a header anyway.
		return &VerifyAPIKeyOutput{Reason: "malformed_token"}, nil
	}
	// The candidate authenticates its own check, so the active key is not
	// needed (a rotation may be what replaces a revoked one); console mode
	// verifies its own fake key.
	if a.Console {
		if err := a.record(ctx, http.MethodGet, "/domains?limit=1", nil); err != nil {
			return nil, err
		}
		return &VerifyAPIKeyOutput{Valid: true, Console: true}, nil
	}

	c := a.client(in.Token.Reveal())
	limit := 1
	err := c.call(func() error {
		_, err := c.sdk.Domains.ListWithOptions(ctx, &resend.ListOptions{Limit: &limit})
		return err
	})
	if err == nil {
		return &VerifyAPIKeyOutput{Valid: true}, nil
	}
	// call has classified err already; the answers that settle the question
	// are picked out of it, and every other error (429, 5xx, another 401 or
	// 403) stays an error.
	var rerr *resendError
	if errors.As(err, &rerr) {
		switch {
		case rerr.Status == http.StatusUnauthorized && rerr.Name == "restricted_api_key":
			return &VerifyAPIKeyOutput{Valid: true, Restricted: true}, nil
		case rerr.Status == http.StatusForbidden && rerr.Name == "invalid_api_key",
			rerr.Status == http.StatusUnauthorized && rerr.Name == "missing_api_key":
			activity.GetLogger(ctx).Warn("resend: key not accepted", "reason", rerr.Name)
			return &VerifyAPIKeyOutput{Reason: rerr.Name}, nil
		}
	}
	return nil, err
}

// DeleteAPIKey deletes the Resend API key in.KeyID. A key that is already
// gone (404) counts as deleted, so a retry after a lost answer succeeds.
func (a *ResendActivities) DeleteAPIKey(ctx context.Context, in DeleteAPIKeyInput) error {
	if strings.TrimSpace(in.KeyID) == "" {
		return invalidResendInput("key id is empty")
	}
	key, err := a.activeKey(ctx)
	if err != nil {
		return err
	}
	if key == "" {
		return a.record(ctx, http.MethodDelete, "/api-keys/"+url.PathEscape(in.KeyID), nil)
	}
	if err := a.client(key).deleteKey(ctx, in.KeyID); err != nil {
		return err
	}
	activity.GetLogger(ctx).Info("resend: API key deleted", "resendKeyID", in.KeyID)
	return nil
}

// validate refuses keys Resend would refuse and names that could match a key
// crmflow did not create.
func (in CreateAPIKeyInput) validate() error {
	switch {
	case !strings.HasPrefix(in.Name, ResendKeyNamePrefix) || strings.TrimSpace(in.Name[len(ResendKeyNamePrefix):]) == "":
		return invalidResendInput(fmt.Sprintf("key name %q must be %q followed by the rotation id", in.Name, ResendKeyNamePrefix))
	case in.Permission != ResendFullAccess && in.Permission != ResendSendingAccess:
		return invalidResendInput(fmt.Sprintf("permission %q is neither %q nor %q", in.Permission, ResendFullAccess, ResendSendingAccess))
	}
	return nil
}

// invalidResendInput is a permanent ResendInvalidRequest for a bad input.
func invalidResendInput(msg string) error {
	return permanent(providerResend, ErrTypeInvalid, errors.New(msg))
}

// validResendToken reports whether s could be sent as a bearer token: not
// empty, printable ASCII, no spaces.
func validResendToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// activeKey returns the key to authenticate with, or "" in console mode
// only. Outside console mode no key (no KeySource, or none active in it) is
// a permanent ResendCredentialMissing. An error the KeySource already
// classified passes through; any other is the store being unreachable,
// which a retry may cure.
func (a *ResendActivities) activeKey(ctx context.Context) (string, error) {
	switch {
	case a.Console:
		return "", nil
	case a.Keys == nil:
		return "", credentialMissing(providerResend)
	}
	key, err := a.Keys.ActiveKey(ctx, ResendCredentialProvider, ResendCredentialName)
	if err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			return "", err
		}
		return "", transient(providerStore, ErrTypeUnavailable, fmt.Errorf("read the active Resend key: %w", err), 0)
	}
	switch {
	case key == "":
		return "", credentialMissing(providerResend)
	case !validResendToken(key):
		return "", permanent(providerResend, ErrTypeAuth, errors.New("the active Resend key is malformed (spaces or control characters)"))
	}
	return key, nil
}
