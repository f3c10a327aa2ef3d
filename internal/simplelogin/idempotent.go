package simplelogin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/crmflow/crmflow/internal/providerhttp"
)

// maxFindPages bounds FindByNote's paging (10,000 matching aliases), so a
// server that never answers a short page cannot keep an activity busy until
// its timeout.
const maxFindPages = 500

// maxSetEnabledRounds bounds SetEnabled's read-then-toggle rounds. A round
// fails only if someone else toggled the alias between our read and our
// toggle; three in a row means something keeps flipping it.
const maxSetEnabledRounds = 3

// FindByNote returns the alias whose note carries marker, for callers that
// must look before they create because SimpleLogin has no idempotency key.
// The marker must stand alone in the note: at its start or after whitespace,
// and at its end or before whitespace, so "crmflow:alias/a1" does not match a
// note holding "crmflow:alias/a10". If several aliases carry it (two creations
// raced), the oldest (lowest id) wins, so every caller settles on the same
// one. No match gives an error matching ErrAliasNotFound.
//
// It searches with SimpleLogin's list query (POST /api/v2/aliases with
// {"query": marker}), which matches notes with SQL ILIKE, and pages until a
// short page. The search may return more than the marker's aliases (ILIKE
// treats _ and % as wildcards; the full-text part matches words), so each
// note is checked here; it cannot miss one, except that ILIKE reads a
// backslash as an escape, so markers with a backslash or whitespace are
// refused. Aliases in SimpleLogin's trash are not listed, so not found.
func (c *Client) FindByNote(ctx context.Context, marker string) (*Alias, error) {
	if err := validMarker(marker); err != nil {
		return nil, fmt.Errorf("find alias by note: %w", err)
	}
	var found *Alias
	for page := 0; ; page++ {
		if page == maxFindPages {
			return nil, fmt.Errorf("find alias by note %q: still more results after %d pages", marker, maxFindPages)
		}
		aliases, err := c.ListAliases(ctx, ListParams{PageID: page, Query: marker})
		if err != nil {
			return nil, fmt.Errorf("find alias by note %q: %w", marker, err)
		}
		for i := range aliases {
			a := &aliases[i]
			if NoteHasMarker(a.Note, marker) && (found == nil || a.ID < found.ID) {
				found = a
			}
		}
		if len(aliases) < PageSize {
			break
		}
	}
	if found == nil {
		return nil, fmt.Errorf("find alias by note %q: %w", marker, ErrAliasNotFound)
	}
	return found, nil
}

// validMarker refuses markers FindByNote could not find reliably.
func validMarker(marker string) error {
	switch {
	case marker == "":
		return fmt.Errorf("%w: empty marker", ErrInvalidParams)
	case !utf8.ValidString(marker):
		return fmt.Errorf("%w: marker is not valid UTF-8", ErrInvalidParams)
	case strings.ContainsFunc(marker, unicode.IsSpace):
		return fmt.Errorf("%w: marker %q contains whitespace", ErrInvalidParams, marker)
	case strings.ContainsRune(marker, '\\'):
		return fmt.Errorf("%w: marker %q contains a backslash, which SimpleLogin's search reads as an escape", ErrInvalidParams, marker)
	}
	return nil
}

// NoteHasMarker reports whether marker stands alone somewhere in note, as
// FindByNote matches it: at the note's start or after whitespace, and at its
// end or before whitespace.
func NoteHasMarker(note, marker string) bool {
	for from := 0; from <= len(note); {
		i := strings.Index(note[from:], marker)
		if i < 0 {
			return false
		}
		start, end := from+i, from+i+len(marker)
		before, _ := utf8.DecodeLastRuneInString(note[:start])
		after, _ := utf8.DecodeRuneInString(note[end:])
		if (start == 0 || unicode.IsSpace(before)) && (end == len(note) || unicode.IsSpace(after)) {
			return true
		}
		from = start + 1
	}
	return false
}

// SetEnabled brings alias id to the wanted state and returns it as it now
// is. SimpleLogin can only flip the state (PATCH does not take "enabled"), so
// it reads the alias first and toggles only when the state differs: a retry
// after a lost answer then changes nothing. If the toggle lands on the wrong
// state because someone else flipped the alias in between, it reads and
// tries again.
func (c *Client) SetEnabled(ctx context.Context, id int64, enabled bool) (*Alias, error) {
	for range maxSetEnabledRounds {
		a, err := c.GetAlias(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("set alias %d enabled=%t: %w", id, enabled, err)
		}
		if a.Enabled == enabled {
			return a, nil
		}
		got, err := c.ToggleAlias(ctx, id)
		if err != nil {
			if providerhttp.StatusOf(err) == http.StatusForbidden {
				// The toggle's 403 means "unknown or not yours"; the read
				// just succeeded, so the alias was most likely deleted in
				// between. The read knows which.
				if _, gerr := c.GetAlias(ctx, id); errors.Is(gerr, ErrAliasNotFound) {
					return nil, fmt.Errorf("set alias %d enabled=%t: %w", id, enabled, gerr)
				}
			}
			return nil, fmt.Errorf("set alias %d enabled=%t: %w", id, enabled, err)
		}
		if got == enabled {
			a.Enabled = got
			return a, nil
		}
	}
	return nil, fmt.Errorf("set alias %d enabled=%t: the alias kept changing state under %d read-then-toggle rounds", id, enabled, maxSetEnabledRounds)
}

// DeleteIfExists deletes alias id and counts "already gone" as success, so a
// retried or repeated delete is idempotent.
//
// SimpleLogin answers a delete of an unknown or already deleted alias with
// 403 "Forbidden", the same answer as for another account's alias (and a
// disabled account gets 403 too). A 403 is therefore checked with a read:
// GET answers 400 for an alias that does not exist, which counts as deleted;
// anything else returns the delete's error. A 404 counts as deleted when it
// is an API answer about the alias, not the router's "No such endpoint" (a
// wrong base URL must not make privacy deletions look done).
func (c *Client) DeleteIfExists(ctx context.Context, id int64) error {
	err := c.DeleteAlias(ctx, id)
	switch {
	case err == nil:
		return nil
	case providerhttp.StatusOf(err) == http.StatusNotFound:
		if aliasMissing(err) {
			return nil
		}
		return err
	case providerhttp.StatusOf(err) == http.StatusForbidden:
		_, gerr := c.GetAlias(ctx, id)
		switch {
		case errors.Is(gerr, ErrAliasNotFound):
			return nil
		case gerr != nil && providerhttp.StatusOf(gerr) != http.StatusForbidden:
			// The check itself failed (network, 5xx, 429): report that, so a
			// transient failure is retried rather than taken as final.
			return fmt.Errorf("delete alias %d: answered 403, and checking whether it still exists failed: %w", id, gerr)
		}
		return err
	default:
		return err
	}
}
