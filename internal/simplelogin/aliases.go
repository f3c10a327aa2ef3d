package simplelogin

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// MailboxRef names a mailbox an alias forwards to.
type MailboxRef struct {
	// ID is the mailbox's id, as custom alias creation takes it.
	ID int64 `json:"id"`
	// Email is the mailbox's address.
	Email string `json:"email"`
}

// Alias is an alias as SimpleLogin returns it from get, list and create.
type Alias struct {
	// ID is SimpleLogin's alias id, the handle for every later call.
	ID int64 `json:"id"`
	// Email is the alias address.
	Email string `json:"email"`
	// Name is the display name used when replying through the alias; null in
	// the API reads as empty.
	Name string `json:"name"`
	// Enabled is false when the alias blocks the mail it receives.
	Enabled bool `json:"enabled"`
	// Note is free text; crmflow writes its marker here (see FindByNote).
	// null in the API reads as empty.
	Note string `json:"note"`
	// Pinned is the user's pin in SimpleLogin's dashboard.
	Pinned bool `json:"pinned"`
	// CreationDate is as SimpleLogin formats it ("2020-04-06 17:57:14+00:00",
	// which is not RFC 3339); prefer CreationTimestamp.
	CreationDate string `json:"creation_date"`
	// CreationTimestamp is the creation time in Unix seconds.
	CreationTimestamp int64 `json:"creation_timestamp"`
	// Mailboxes are where the alias forwards to.
	Mailboxes []MailboxRef `json:"mailboxes"`
	// NbForward counts mails forwarded by the alias.
	NbForward int `json:"nb_forward"`
	// NbBlock counts mails blocked by the alias.
	NbBlock int `json:"nb_block"`
	// NbReply counts replies sent through the alias.
	NbReply int `json:"nb_reply"`
}

// createdAlias is the answer to both creations: the alias object plus an
// "alias" field that repeats its address.
type createdAlias struct {
	Alias
	Address string `json:"alias"`
}

// alias returns the created alias, taking its address from "alias" when
// "email" is missing.
func (a *createdAlias) alias() (*Alias, error) {
	out := a.Alias
	if out.Email == "" {
		out.Email = a.Address
	}
	if out.ID <= 0 || out.Email == "" {
		return nil, fmt.Errorf("response has no alias id or address")
	}
	return &out, nil
}

// RandomMode chooses how a random alias is generated.
type RandomMode string

// Random alias modes; the zero mode uses the account's own setting.
const (
	// ModeUUID makes aliases like 2cc6a1e6-...@simplelogin.com.
	ModeUUID RandomMode = "uuid"
	// ModeWord makes aliases like happy_cat123@simplelogin.com.
	ModeWord RandomMode = "word"
)

// RandomAliasParams is a random alias creation.
type RandomAliasParams struct {
	// Hostname, optional, is where the alias will be used. With the user
	// setting "include website in one-click alias" on, SimpleLogin may answer
	// with an alias it already made for that hostname instead of a new one;
	// check the note when that matters.
	Hostname string
	// Mode is ModeUUID, ModeWord or empty for the account's setting. It is a
	// query parameter, not a body field.
	Mode RandomMode
	// Note is stored on the new alias.
	Note string
}

// CreateRandomAlias creates a random alias (POST /api/alias/random/new).
// SimpleLogin has no idempotency key: a retry after a lost answer creates a
// second alias. Put a marker in Note and look for it with FindByNote first.
func (c *Client) CreateRandomAlias(ctx context.Context, p RandomAliasParams) (*Alias, error) {
	q := url.Values{}
	if p.Hostname != "" {
		q.Set("hostname", p.Hostname)
	}
	switch p.Mode {
	case "":
	case ModeUUID, ModeWord:
		q.Set("mode", string(p.Mode))
	default:
		return nil, fmt.Errorf("create random alias: %w: mode %q is neither uuid nor word", ErrInvalidParams, p.Mode)
	}
	path := "/api/alias/random/new"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	// The body is optional for SimpleLogin, but the unofficial spec requires
	// one, and an empty object is valid for both.
	body := struct {
		Note string `json:"note,omitempty"`
	}{p.Note}
	var out createdAlias
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodPost, Path: path, Body: body}, &out)
	if err != nil {
		return nil, fmt.Errorf("create random alias: %w", err)
	}
	if recorded {
		return c.consoleCreate("", p.Note, ""), nil
	}
	a, err := out.alias()
	if err != nil {
		return nil, fmt.Errorf("create random alias: %w", err)
	}
	return a, nil
}

// CustomAliasParams is a custom alias creation.
type CustomAliasParams struct {
	// Hostname, optional, is where the alias will be used (a query parameter).
	Hostname string `json:"-"`
	// Prefix is the part before the suffix; required. SimpleLogin lowercases
	// it and refuses characters it does not allow.
	Prefix string `json:"alias_prefix"`
	// SignedSuffix is one of AliasOptions' suffixes, less than 600 s old.
	SignedSuffix string `json:"signed_suffix"`
	// MailboxIDs are the verified mailboxes to forward to; at least one.
	MailboxIDs []int64 `json:"mailbox_ids"`
	// Note is stored on the new alias.
	Note string `json:"note,omitempty"`
	// Name is the display name used when replying through the alias.
	Name string `json:"name,omitempty"`
}

// CreateCustomAlias creates prefix+suffix (POST /api/v3/alias/custom/new).
// SimpleLogin answers 409 when the address exists (or was deleted: deleted
// addresses are never reused) and 412 when the signed suffix has expired. As
// with CreateRandomAlias, a retry is not idempotent.
func (c *Client) CreateCustomAlias(ctx context.Context, p CustomAliasParams) (*Alias, error) {
	switch {
	case strings.TrimSpace(p.Prefix) == "":
		return nil, fmt.Errorf("create custom alias: %w: empty prefix", ErrInvalidParams)
	case p.SignedSuffix == "":
		return nil, fmt.Errorf("create custom alias: %w: empty signed suffix", ErrInvalidParams)
	case len(p.MailboxIDs) == 0:
		return nil, fmt.Errorf("create custom alias: %w: no mailbox ids", ErrInvalidParams)
	}
	path := "/api/v3/alias/custom/new"
	if p.Hostname != "" {
		path += "?" + url.Values{"hostname": {p.Hostname}}.Encode()
	}
	var out createdAlias
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodPost, Path: path, Body: p}, &out)
	if err != nil {
		return nil, fmt.Errorf("create custom alias %q: %w", p.Prefix, err)
	}
	if recorded {
		return c.consoleCreate(p.Prefix, p.Note, p.Name), nil
	}
	a, err := out.alias()
	if err != nil {
		return nil, fmt.Errorf("create custom alias %q: %w", p.Prefix, err)
	}
	return a, nil
}

// aliasPath is the path of alias id, refusing ids SimpleLogin cannot have:
// its route takes a positive integer, and anything else would hit the
// router's 404.
func aliasPath(id int64, suffix string) (string, error) {
	if id <= 0 {
		return "", fmt.Errorf("%w: alias id %d is not positive", ErrInvalidParams, id)
	}
	return "/api/aliases/" + strconv.FormatInt(id, 10) + suffix, nil
}

// GetAlias returns alias id (GET /api/aliases/{id}). An alias that does not
// exist gives an error matching ErrAliasNotFound: SimpleLogin answers 400
// "Unknown error" for it, not the 404 the unofficial spec lists. Another
// account's alias gives 403. An alias in SimpleLogin's trash is still
// returned, disabled.
func (c *Client) GetAlias(ctx context.Context, id int64) (*Alias, error) {
	path, err := aliasPath(id, "")
	if err != nil {
		return nil, fmt.Errorf("get alias: %w", err)
	}
	var out Alias
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodGet, Path: path}, &out)
	if err != nil {
		if aliasMissing(err) {
			return nil, fmt.Errorf("get alias %d: %w: %w", id, ErrAliasNotFound, err)
		}
		return nil, fmt.Errorf("get alias %d: %w", id, err)
	}
	if recorded {
		a, ok := c.console.get(id)
		if !ok {
			return nil, fmt.Errorf("get alias %d: %w (console)", id, ErrAliasNotFound)
		}
		return a, nil
	}
	return &out, nil
}

// ListFilter narrows a list to one kind of alias.
type ListFilter string

// List filters; SimpleLogin takes at most one.
const (
	// FilterEnabled lists enabled aliases only.
	FilterEnabled ListFilter = "enabled"
	// FilterDisabled lists disabled aliases only.
	FilterDisabled ListFilter = "disabled"
	// FilterPinned lists pinned aliases only.
	FilterPinned ListFilter = "pinned"
)

// ListParams selects one page of aliases.
type ListParams struct {
	// PageID is the page, from 0; SimpleLogin requires it.
	PageID int
	// Query, when set, keeps aliases whose email, note or name contains it
	// (case-insensitive, and SQL LIKE wildcards _ and % in it match any
	// character), or whose text matches it as a full-text search.
	Query string
	// Filter keeps only enabled, disabled or pinned aliases; empty keeps all.
	Filter ListFilter
}

// ListAliases returns one page of at most PageSize aliases, newest first;
// a page shorter than PageSize is the last. Aliases in SimpleLogin's trash
// are not listed.
//
// Without a query it sends GET /api/v2/aliases?page_id=N. With one it sends
// POST to the same path with {"query": ...}: SimpleLogin reads the query only
// from a JSON body, and a GET with a body is not something proxies keep.
func (c *Client) ListAliases(ctx context.Context, p ListParams) ([]Alias, error) {
	if p.PageID < 0 {
		return nil, fmt.Errorf("list aliases: %w: page %d", ErrInvalidParams, p.PageID)
	}
	q := url.Values{"page_id": {strconv.Itoa(p.PageID)}}
	switch p.Filter {
	case "":
	case FilterEnabled, FilterDisabled, FilterPinned:
		// SimpleLogin tests only that the parameter is present, so
		// "enabled=false" would still filter; true is the only value sent.
		q.Set(string(p.Filter), "true")
	default:
		return nil, fmt.Errorf("list aliases: %w: unknown filter %q", ErrInvalidParams, p.Filter)
	}
	r := providerhttp.Request{Method: http.MethodGet, Path: "/api/v2/aliases?" + q.Encode()}
	if p.Query != "" {
		r.Method = http.MethodPost
		r.Body = struct {
			Query string `json:"query"`
		}{p.Query}
	}
	var out struct {
		Aliases []Alias `json:"aliases"`
	}
	recorded, err := c.api.Do(ctx, r, &out)
	if err != nil {
		return nil, fmt.Errorf("list aliases page %d: %w", p.PageID, err)
	}
	if recorded {
		return c.console.list(p), nil
	}
	return out.Aliases, nil
}

// ToggleAlias flips alias id between enabled and disabled and returns the new
// state (POST /api/aliases/{id}/toggle). It is not idempotent: a retry flips
// it back. Use SetEnabled to reach a state. SimpleLogin answers 403
// "Forbidden" both for an unknown alias and for another account's.
func (c *Client) ToggleAlias(ctx context.Context, id int64) (enabled bool, err error) {
	path, err := aliasPath(id, "/toggle")
	if err != nil {
		return false, fmt.Errorf("toggle alias: %w", err)
	}
	var out struct {
		Enabled *bool `json:"enabled"`
	}
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodPost, Path: path}, &out)
	if err != nil {
		return false, fmt.Errorf("toggle alias %d: %w", id, err)
	}
	if recorded {
		enabled, ok := c.console.toggle(id)
		if !ok {
			return false, fmt.Errorf("toggle alias %d: %w (console)", id, ErrAliasNotFound)
		}
		return enabled, nil
	}
	if out.Enabled == nil {
		return false, fmt.Errorf("toggle alias %d: response has no enabled field", id)
	}
	return *out.Enabled, nil
}

// DeleteAlias deletes alias id (DELETE /api/aliases/{id}). Depending on the
// account's setting SimpleLogin deletes it at once or moves it to its trash
// (disabled, deleted for good after a while, or by a second delete). A
// deleted alias answers 403 "Forbidden", not 404, exactly like another
// account's alias; DeleteIfExists tells the two apart.
func (c *Client) DeleteAlias(ctx context.Context, id int64) error {
	path, err := aliasPath(id, "")
	if err != nil {
		return fmt.Errorf("delete alias: %w", err)
	}
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodDelete, Path: path}, nil)
	if err != nil {
		return fmt.Errorf("delete alias %d: %w", id, err)
	}
	if recorded {
		c.console.remove(id)
	}
	return nil
}
