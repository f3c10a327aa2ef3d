package simplelogin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// Mailboxes are where aliases forward mail to. Facts from simple-login/app
// (app/api/views/mailbox.py, app/api/views/alias.py), which the unofficial
// spec only partly describes:
//   - POST /api/mailboxes {"email"} answers 201 with the mailbox, unverified:
//     SimpleLogin emails a verification link to the address, and until its
//     owner follows it no alias may forward there. It answers 400 when the
//     address is already a mailbox (of this account or another), cannot be
//     one (a disposable domain), or the account is not premium.
//   - GET /api/v2/mailboxes lists them all, verified or not, with "verified".
//   - PATCH /api/aliases/{id} {"mailbox_ids": [...]} replaces the alias's
//     mailboxes; a mailbox that is not the account's or not verified is 400
//     {"error": "Forbidden"}, an unknown alias 403.
//   - DELETE /api/mailboxes/{id} answers 200 and deletes the mailbox in a
//     background job, with the aliases that forward only to it; an unknown
//     mailbox is 403, the account's default mailbox 400.

// ErrMailboxNotFound is matched (errors.Is) by EnsureMailbox's error when
// SimpleLogin refuses to create a mailbox for an address this account does
// not hold either: it is another account's mailbox or cannot be one.
var ErrMailboxNotFound = fmt.Errorf("simplelogin: mailbox %w", providerhttp.ErrNotFound)

// mailboxPath is the path of mailbox id, refusing ids SimpleLogin cannot have.
func mailboxPath(id int64) (string, error) {
	if id <= 0 {
		return "", fmt.Errorf("%w: mailbox id %d is not positive", ErrInvalidParams, id)
	}
	return "/api/mailboxes/" + strconv.FormatInt(id, 10), nil
}

// CreateMailbox adds email to the account's mailboxes (POST /api/mailboxes)
// and returns the new mailbox, unverified: SimpleLogin sends its owner a
// verification link. It has no idempotency key; EnsureMailbox looks first.
// In console mode the mailbox is made up, already verified.
func (c *Client) CreateMailbox(ctx context.Context, email string) (*Mailbox, error) {
	email = strings.TrimSpace(email)
	if email == "" || !strings.Contains(email, "@") {
		return nil, fmt.Errorf("create mailbox: %w: %q is not an email address", ErrInvalidParams, email)
	}
	body := struct {
		Email string `json:"email"`
	}{email}
	var out Mailbox
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodPost, Path: "/api/mailboxes", Body: body}, &out)
	if err != nil {
		return nil, fmt.Errorf("create mailbox: %w", err)
	}
	if recorded {
		return c.console.addMailbox(c.api.UniqueConsoleID(), email), nil
	}
	if out.ID <= 0 {
		return nil, errors.New("create mailbox: response has no mailbox id")
	}
	return &out, nil
}

// FindMailbox returns the account's mailbox whose address is email, compared
// as SimpleLogin stores it (trimmed, lowercase), or nil when there is none.
func (c *Client) FindMailbox(ctx context.Context, email string) (*Mailbox, error) {
	mbs, err := c.Mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	want := strings.ToLower(strings.TrimSpace(email))
	for i := range mbs {
		if strings.ToLower(strings.TrimSpace(mbs[i].Email)) == want {
			return &mbs[i], nil
		}
	}
	return nil, nil
}

// EnsureMailbox returns the account's mailbox for email, creating it when
// there is none, so that a retry after a lost answer finds the mailbox the
// first attempt made instead of making another. A 400 from the creation is
// checked with a second look: the mailbox an earlier attempt made (or a
// concurrent one) is returned; an address the account still does not hold
// (another account's mailbox, a refused domain, a free account) is an error
// matching ErrMailboxNotFound, with SimpleLogin's message.
func (c *Client) EnsureMailbox(ctx context.Context, email string) (*Mailbox, error) {
	found, err := c.FindMailbox(ctx, email)
	switch {
	case err != nil:
		return nil, fmt.Errorf("ensure mailbox: %w", err)
	case found != nil:
		return found, nil
	}
	created, err := c.CreateMailbox(ctx, email)
	if err == nil {
		return created, nil
	}
	if providerhttp.StatusOf(err) != http.StatusBadRequest {
		return nil, fmt.Errorf("ensure mailbox: %w", err)
	}
	found, ferr := c.FindMailbox(ctx, email)
	switch {
	case ferr != nil:
		return nil, fmt.Errorf("ensure mailbox: creation answered 400, and looking again failed: %w", ferr)
	case found != nil:
		return found, nil
	}
	return nil, fmt.Errorf("ensure mailbox: %w: %w", ErrMailboxNotFound, err)
}

// SetAliasMailboxes makes alias id forward to mailboxIDs, replacing the
// mailboxes it had (PATCH /api/aliases/{id}). Setting the same list again
// changes nothing, so a retry is safe. An unverified or unknown mailbox is
// a 400; an unknown alias a 403 (see DeleteIfExists for telling that apart).
func (c *Client) SetAliasMailboxes(ctx context.Context, id int64, mailboxIDs []int64) error {
	path, err := aliasPath(id, "")
	if err != nil {
		return fmt.Errorf("set alias mailboxes: %w", err)
	}
	if len(mailboxIDs) == 0 {
		return fmt.Errorf("set alias %d mailboxes: %w: no mailbox ids", id, ErrInvalidParams)
	}
	body := struct {
		MailboxIDs []int64 `json:"mailbox_ids"`
	}{mailboxIDs}
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodPatch, Path: path, Body: body}, nil)
	if err != nil {
		return fmt.Errorf("set alias %d mailboxes: %w", id, err)
	}
	if recorded && !c.console.setMailboxes(id, mailboxIDs) {
		return fmt.Errorf("set alias %d mailboxes: %w (console)", id, ErrAliasNotFound)
	}
	return nil
}

// DeleteMailbox deletes mailbox id (DELETE /api/mailboxes/{id}); SimpleLogin
// does it in a background job, deleting with it the aliases that forward
// only to it. A mailbox that is unknown or already deleted answers 403.
func (c *Client) DeleteMailbox(ctx context.Context, id int64) error {
	path, err := mailboxPath(id)
	if err != nil {
		return fmt.Errorf("delete mailbox: %w", err)
	}
	recorded, err := c.api.Do(ctx, providerhttp.Request{Method: http.MethodDelete, Path: path}, nil)
	if err != nil {
		return fmt.Errorf("delete mailbox %d: %w", id, err)
	}
	if recorded {
		c.console.removeMailbox(id)
	}
	return nil
}

// DeleteMailboxIfExists deletes mailbox id and counts "already gone" as
// success. SimpleLogin answers 403 both for a mailbox already deleted and
// for another account's, so a 403 is checked against the account's list: a
// mailbox no longer in it is gone.
func (c *Client) DeleteMailboxIfExists(ctx context.Context, id int64) error {
	err := c.DeleteMailbox(ctx, id)
	if err == nil || providerhttp.StatusOf(err) != http.StatusForbidden {
		return err
	}
	mbs, lerr := c.Mailboxes(ctx)
	if lerr != nil {
		return fmt.Errorf("delete mailbox %d: answered 403, and checking whether it still exists failed: %w", id, lerr)
	}
	for _, mb := range mbs {
		if mb.ID == id {
			return err
		}
	}
	return nil
}
