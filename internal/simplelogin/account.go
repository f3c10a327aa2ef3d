package simplelogin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// UserInfo is the account an API key belongs to.
type UserInfo struct {
	// Name is the user's name, possibly empty.
	Name string `json:"name"`
	// Email is the account's login address.
	Email string `json:"email"`
	// IsPremium is true for paid (or trial) accounts, which have higher
	// creation quotas.
	IsPremium bool `json:"is_premium"`
	// InTrial is true during the trial period.
	InTrial bool `json:"in_trial"`
	// MaxAliasFreePlan is how many aliases a free account may hold.
	MaxAliasFreePlan int `json:"max_alias_free_plan"`
	// CanCreateReverseAlias tells whether the account may create contacts.
	CanCreateReverseAlias bool `json:"can_create_reverse_alias"`
	// ProfilePictureURL is empty when the user has none. The unofficial spec
	// calls it profile_picture; the server sends profile_picture_url.
	ProfilePictureURL string `json:"profile_picture_url"`
}

// UserInfo returns the account of the API key. SimpleLogin names it as the way
// to check a key, and it has no rate limit of its own, so key rotation uses it
// to verify a new key: a wrong key answers 401.
func (c *Client) UserInfo(ctx context.Context) (*UserInfo, error) {
	var out UserInfo
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodGet, Path: "/api/user_info"}, &out)
	if err != nil {
		return nil, fmt.Errorf("get user info: %w", err)
	}
	if recorded {
		return &UserInfo{Name: "crmflow console", Email: "console@" + consoleDomain, IsPremium: true}, nil
	}
	return &out, nil
}

// Suffix is one alias suffix custom creation may use.
type Suffix struct {
	// Suffix is the part after the prefix, such as ".cat@simplelogin.com".
	Suffix string `json:"suffix"`
	// SignedSuffix is what custom creation takes. SimpleLogin's signature
	// expires after 600 s, so fetch options right before creating. The docs'
	// prose calls it signed-suffix; the JSON is signed_suffix.
	SignedSuffix string `json:"signed_suffix"`
	// IsCustom is true for the user's own domains.
	IsCustom bool `json:"is_custom"`
	// IsPremium is true for domains reserved to premium accounts.
	IsPremium bool `json:"is_premium"`
}

// Recommendation is an alias already used on the hostname asked about.
type Recommendation struct {
	// Alias is the recommended alias address.
	Alias string `json:"alias"`
	// Hostname is the hostname it was used on.
	Hostname string `json:"hostname"`
}

// AliasOptions is what the account may create (GET /api/v5/alias/options).
type AliasOptions struct {
	// CanCreate is false when a free account has reached its alias quota.
	CanCreate bool `json:"can_create"`
	// PrefixSuggestion is derived from the hostname asked about, if any.
	PrefixSuggestion string `json:"prefix_suggestion"`
	// Suffixes are the usable suffixes, the user's default first.
	Suffixes []Suffix `json:"suffixes"`
	// Recommendation is set when an alias was already used on the hostname.
	Recommendation *Recommendation `json:"recommendation,omitempty"`
}

// AliasOptions returns the suffixes custom creation may use, signed. hostname
// is optional; SimpleLogin derives a prefix suggestion from it.
func (c *Client) AliasOptions(ctx context.Context, hostname string) (*AliasOptions, error) {
	path := "/api/v5/alias/options"
	if hostname != "" {
		path += "?" + url.Values{"hostname": {hostname}}.Encode()
	}
	var out AliasOptions
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodGet, Path: path}, &out)
	if err != nil {
		return nil, fmt.Errorf("get alias options: %w", err)
	}
	if recorded {
		return &AliasOptions{
			CanCreate: true,
			Suffixes:  []Suffix{{Suffix: ".console@" + consoleDomain, SignedSuffix: ".console@" + consoleDomain + ".console-signature"}},
		}, nil
	}
	return &out, nil
}

// Mailbox is one of the account's mailboxes.
type Mailbox struct {
	// ID is what custom creation takes in mailbox_ids.
	ID int64 `json:"id"`
	// Email is the mailbox's address.
	Email string `json:"email"`
	// Default is true for the account's default mailbox.
	Default bool `json:"default"`
	// Verified is false until the owner confirms the address; SimpleLogin
	// refuses unverified mailboxes in custom creation.
	Verified bool `json:"verified"`
}

// Mailboxes lists the account's mailboxes, verified or not
// (GET /api/v2/mailboxes). Custom creation needs at least one mailbox id, and
// the options answer does not carry any.
func (c *Client) Mailboxes(ctx context.Context) ([]Mailbox, error) {
	var out struct {
		Mailboxes []Mailbox `json:"mailboxes"`
	}
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodGet, Path: "/api/v2/mailboxes"}, &out)
	if err != nil {
		return nil, fmt.Errorf("list mailboxes: %w", err)
	}
	if recorded {
		return c.console.mailboxList(), nil
	}
	return out.Mailboxes, nil
}
