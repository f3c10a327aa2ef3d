package simplelogin

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// consoleDomain is the domain of console aliases: .invalid is reserved
// (RFC 2606), so no mail can ever be sent to one by mistake.
const consoleDomain = "simplelogin.invalid"

// Call is a request a console client would have sent to SimpleLogin. It
// carries no credential; Provider is "simplelogin", Body is nil for calls
// without a body, and IdempotencyKey is always empty (SimpleLogin has none).
type Call = providerhttp.Call

// Recorder receives the calls of a console client. An error from Record fails
// the call, so a recorder that stores calls can make the caller retry.
type Recorder = providerhttp.Recorder

// LogRecorder logs each call at info level ("CONSOLE MODE simplelogin: would
// send"), so a developer without a SimpleLogin key sees what would have been
// sent.
type LogRecorder = providerhttp.LogRecorder

// consoleState is the in-memory account a console client answers from. It
// remembers what this process created, so that the look-before-create and
// read-before-toggle helpers behave in dev as they do against SimpleLogin.
type consoleState struct {
	mu      sync.Mutex
	aliases map[int64]*Alias
	deleted map[int64]bool
	// mailboxes are the ones this process added, beside consoleMailboxRef.
	mailboxes map[int64]*Mailbox
}

func newConsoleState() *consoleState {
	return &consoleState{aliases: map[int64]*Alias{}, deleted: map[int64]bool{}, mailboxes: map[int64]*Mailbox{}}
}

// consoleEmail is the address of console alias n, labelled so that nobody
// mistakes it for a real one.
func consoleEmail(prefix string, n int64) string {
	local := "console-" + strconv.FormatInt(n, 10)
	if prefix != "" {
		local = strings.ToLower(prefix) + "." + local
	}
	return local + "@" + consoleDomain
}

// create stores a new enabled console alias and returns a copy of it.
func (c *Client) consoleCreate(prefix, note, name string) *Alias {
	// The id is stored (aliases.simplelogin_id, and the address made from
	// it, are unique): a counter from 1 would hand out, after a restart,
	// the ids of aliases the last process created, and every new alias
	// would be refused.
	id := c.api.UniqueConsoleID()
	now := time.Now().UTC()
	a := &Alias{
		ID:                id,
		Email:             consoleEmail(prefix, id),
		Name:              name,
		Note:              note,
		Enabled:           true,
		CreationDate:      now.Format("2006-01-02 15:04:05-07:00"),
		CreationTimestamp: now.Unix(),
		Mailboxes:         []MailboxRef{consoleMailboxRef},
	}
	s := c.console
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aliases[id] = a
	return clone(a)
}

// consoleMailboxRef is the console account's only mailbox.
var consoleMailboxRef = MailboxRef{ID: 1, Email: "console@" + consoleDomain}

// get returns the console alias id. An id this process never saw (it was
// created before a restart) is made up as an enabled alias, so that a dev
// worker resumed after a restart keeps going; an id deleted here is missing.
func (s *consoleState) get(id int64) (*Alias, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.lookup(id)
	if !ok {
		return nil, false
	}
	return clone(a), true
}

// lookup is get without the lock and without copying.
func (s *consoleState) lookup(id int64) (*Alias, bool) {
	if s.deleted[id] {
		return nil, false
	}
	if a, ok := s.aliases[id]; ok {
		return a, true
	}
	a := &Alias{ID: id, Email: consoleEmail("", id), Enabled: true, Mailboxes: []MailboxRef{consoleMailboxRef}}
	s.aliases[id] = a
	return a, true
}

// toggle flips the console alias like SimpleLogin does and returns the new
// state; ok is false for an alias deleted here.
func (s *consoleState) toggle(id int64) (enabled, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.lookup(id)
	if !ok {
		return false, false
	}
	a.Enabled = !a.Enabled
	return a.Enabled, true
}

// remove deletes the console alias; ok is false when it was already deleted.
func (s *consoleState) remove(id int64) (ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted[id] {
		return false
	}
	delete(s.aliases, id)
	s.deleted[id] = true
	return true
}

// list answers a list page as SimpleLogin would: newest first, PageSize per
// page, the query matched case-insensitively against email, note and name.
func (s *consoleState) list(p ListParams) []Alias {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := strings.ToLower(p.Query)
	var all []Alias
	for _, a := range s.aliases {
		switch p.Filter {
		case FilterEnabled:
			if !a.Enabled {
				continue
			}
		case FilterDisabled:
			if a.Enabled {
				continue
			}
		case FilterPinned:
			if !a.Pinned {
				continue
			}
		}
		if q != "" && !strings.Contains(strings.ToLower(a.Email+"\n"+a.Note+"\n"+a.Name), q) {
			continue
		}
		all = append(all, *clone(a))
	}
	slices.SortFunc(all, func(x, y Alias) int { return cmp.Compare(y.ID, x.ID) })
	start := min(p.PageID*PageSize, len(all))
	end := min(start+PageSize, len(all))
	return all[start:end]
}

// clone copies a so that callers cannot change the console state.
func clone(a *Alias) *Alias {
	c := *a
	c.Mailboxes = slices.Clone(a.Mailboxes)
	return &c
}

// addMailbox stores a console mailbox for email. It is verified at once:
// in console mode nobody receives SimpleLogin's verification link.
func (s *consoleState) addMailbox(id int64, email string) *Mailbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := &Mailbox{ID: id, Email: strings.ToLower(email), Verified: true}
	s.mailboxes[id] = mb
	c := *mb
	return &c
}

// mailboxList is the console account's mailboxes: its default one first,
// then those added, oldest first.
func (s *consoleState) mailboxList() []Mailbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Mailbox{{ID: consoleMailboxRef.ID, Email: consoleMailboxRef.Email, Default: true, Verified: true}}
	added := make([]Mailbox, 0, len(s.mailboxes))
	for _, mb := range s.mailboxes {
		added = append(added, *mb)
	}
	slices.SortFunc(added, func(x, y Mailbox) int { return cmp.Compare(x.ID, y.ID) })
	return append(out, added...)
}

// setMailboxes points the console alias at mailboxIDs; ok is false for an
// alias deleted here.
func (s *consoleState) setMailboxes(aliasID int64, mailboxIDs []int64) (ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.lookup(aliasID)
	if !ok {
		return false
	}
	a.Mailboxes = a.Mailboxes[:0]
	for _, id := range mailboxIDs {
		ref := MailboxRef{ID: id}
		if mb, ok := s.mailboxes[id]; ok {
			ref.Email = mb.Email
		} else if id == consoleMailboxRef.ID {
			ref = consoleMailboxRef
		}
		a.Mailboxes = append(a.Mailboxes, ref)
	}
	return true
}

// removeMailbox forgets a console mailbox.
func (s *consoleState) removeMailbox(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mailboxes, id)
}
