package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// The SimpleLogin peer's mailboxes: where aliases forward to, and how a
// user's aliases follow a new address.

// serveMailboxes lists, creates (unverified, as SimpleLogin does until the
// owner follows its link) and deletes mailboxes. The caller holds p.mu.
func (p *simpleLoginPeer) serveMailboxes(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(map[string]any{"mailboxes": p.mailboxes})
	case r.Method == http.MethodPost:
		var body struct {
			Email string `json:"email"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		for _, mb := range p.mailboxes {
			if mb["email"] == strings.ToLower(body.Email) {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"error":"%s already used"}`, body.Email)
				return
			}
		}
		p.nextID++
		mb := map[string]any{"id": p.nextID, "email": strings.ToLower(body.Email), "default": false, "verified": false}
		p.mailboxes = append(p.mailboxes, mb)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(mb)
	case r.Method == http.MethodDelete:
		id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/api/mailboxes/"), 10, 64)
		for i, mb := range p.mailboxes {
			if mb["id"] == id && mb["default"] != true {
				p.mailboxes = append(p.mailboxes[:i], p.mailboxes[i+1:]...)
				fmt.Fprint(w, `{"deleted":true}`)
				return
			}
		}
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":"Forbidden"}`)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// patchAlias sets an alias's mailboxes; SimpleLogin refuses unverified
// ones. The caller holds p.mu.
func (p *simpleLoginPeer) patchAlias(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/api/aliases/"), 10, 64)
	a, ok := p.aliases[id]
	if !ok {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"error":"Forbidden"}`)
		return
	}
	var body struct {
		MailboxIDs []int64 `json:"mailbox_ids"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	var refs []any
	for _, mid := range body.MailboxIDs {
		mb := p.mailbox(func(mb map[string]any) bool { return mb["id"] == mid })
		if mb == nil || mb["verified"] != true {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"Forbidden"}`)
			return
		}
		refs = append(refs, map[string]any{"id": mid, "email": mb["email"]})
	}
	a["mailboxes"] = refs
	fmt.Fprint(w, `{"ok":true}`)
}

// mailbox returns the first mailbox match accepts; the caller holds p.mu.
func (p *simpleLoginPeer) mailbox(match func(map[string]any) bool) map[string]any {
	for _, mb := range p.mailboxes {
		if match(mb) {
			return mb
		}
	}
	return nil
}

// mailboxOf returns the id of the account's mailbox for email, 0 for none.
func (p *simpleLoginPeer) mailboxOf(email string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if mb := p.mailbox(func(mb map[string]any) bool { return mb["email"] == email }); mb != nil {
		return mb["id"].(int64)
	}
	return 0
}

// verifyMailbox marks the mailbox for email verified, as its owner's click
// on SimpleLogin's link does.
func (p *simpleLoginPeer) verifyMailbox(email string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if mb := p.mailbox(func(mb map[string]any) bool { return mb["email"] == email }); mb != nil {
		mb["verified"] = true
	}
}

// forwardsTo returns the mailbox ids alias id forwards to once changed
// (nil: never changed from the account's default), and whether it exists.
func (p *simpleLoginPeer) forwardsTo(id int64) ([]int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.aliases[id]
	if !ok {
		return nil, false
	}
	var out []int64
	refs, _ := a["mailboxes"].([]any)
	for _, ref := range refs {
		out = append(out, ref.(map[string]any)["id"].(int64))
	}
	return out, true
}

// addMailbox adds a mailbox for email to the account, verified or not, as
// one made earlier (for another of the account's users, or by hand) is.
func (p *simpleLoginPeer) addMailbox(email string, verified bool) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	p.mailboxes = append(p.mailboxes, map[string]any{"id": p.nextID, "email": email, "default": false, "verified": verified})
	return p.nextID
}
