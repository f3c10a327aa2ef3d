package doctor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/crmflow/crmflow/config"
	"github.com/crmflow/crmflow/internal/credentials"
	"github.com/crmflow/crmflow/internal/providers"
	"github.com/crmflow/crmflow/internal/store"
)

// checked are the providers whose keys doctor checks, in report order:
// those the registry can check with the provider.
func checked() []providers.Provider {
	var out []providers.Provider
	for _, p := range providers.All() {
		if p.Checkable() {
			out = append(out, p)
		}
	}
	return out
}

// checkProviders checks every provider's key at the same time.
func (c *Checker) checkProviders(ctx context.Context, pg postgresOutcome) []Result {
	creds := c.credentialStore(pg)
	list := checked()
	out := make([]Result, len(list))
	var wg sync.WaitGroup
	for i, p := range list {
		wg.Go(func() { out[i] = c.checkProvider(ctx, creds, p) })
	}
	wg.Wait()
	return out
}

// credentialStore is where the keys are read, as the worker reads them; nil
// when it cannot be read (PostgreSQL unreachable or not migrated, no usable
// master key), in which case the configured keys are checked.
func (c *Checker) credentialStore(pg postgresOutcome) *credentials.Store {
	if !pg.result.OK {
		// Unreachable or not migrated: the postgres check says so once.
		return nil
	}
	if c.Credentials != nil {
		return c.Credentials
	}
	keys, err := credentials.KeyringOf(c.Config.MasterKeys())
	if err != nil {
		return nil // the config check names the bad master key
	}
	// No cache: every run reads what is stored now.
	return credentials.NewStore(pg.store, keys, credentials.Options{CacheTTL: -1})
}

// providerKey is the key a provider is checked with and where it came from.
type providerKey struct {
	secret string
	// from names the key's place for people, e.g. "the credential store
	// (knock/api_key@v2)".
	from string
	// stored is true when the key came from the credential store.
	stored bool
}

// keyFor reads p's active key from the credential store, as the worker's
// activities do at each call. A store with no version of the key yet falls
// back to the configured key, which the next worker start seeds; a store
// that cannot be read falls back to it too, saying so. A non-nil Result is
// a failure found on the way.
func (c *Checker) keyFor(ctx context.Context, creds *credentials.Store, p providers.Provider) (providerKey, *Result) {
	configured := func(note string) providerKey {
		return providerKey{secret: c.Config.SecretAt(p.ConfigKey).Reveal(), from: "config (" + p.ConfigKey + "; " + note + ")"}
	}
	if creds == nil {
		return configured("the credential store was not read"), nil
	}
	active, err := creds.Active(ctx, p.Key.Provider, p.Key.Name)
	if err == nil {
		return providerKey{secret: active.Secret.Reveal(), from: "the credential store (" + active.Subject() + ")", stored: true}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		r := fail(p.Name, "cannot read its key from the credential store: "+err.Error(),
			"check PostgreSQL and that master_key (or master_key_previous) is the key the credentials were stored under")
		return providerKey{}, &r
	}
	versions, err := creds.Versions(ctx, p.Key.Provider, p.Key.Name)
	if err != nil {
		r := fail(p.Name, "cannot read its key versions from the credential store: "+err.Error(), postgresFix)
		return providerKey{}, &r
	}
	if len(versions) > 0 {
		// The store is the truth once it holds the key: config no longer
		// seeds it. The provider is configured, so the worker does not
		// fall back to console mode: each call fails and its step parks.
		r := fail(p.Name, fmt.Sprintf("no active key in the credential store (%d versions, none active): its calls fail with %sCredentialMissing and park",
			len(versions), p.Title), rotateFix(p))
		return providerKey{}, &r
	}
	return configured("seeded into the credential store at the next worker start"), nil
}

// checkProvider makes p's cheapest authenticated call with its key.
func (c *Checker) checkProvider(ctx context.Context, creds *credentials.Store, p providers.Provider) Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	if slices.Contains(c.Config.ConsoleProviders(), p.Name) {
		// The worker decides console mode at start, from config alone: a
		// key in the credential store does not make it send.
		return c.consoleResult(ctx, creds, p)
	}
	key, problem := c.keyFor(ctx, creds, p)
	if problem != nil {
		return *problem
	}
	v, err := p.Check(ctx, c.httpClient(), c.Config.StringAt(p.URLKey), key.secret)
	switch {
	case err != nil:
		urlKey := p.URLKey
		return fail(p.Name, err.Error(), fmt.Sprintf("check %s (%s) and %s's status; crmflow's activities wait and retry meanwhile",
			urlKey, config.EnvVar(urlKey), p.Title))
	case !v.Valid:
		detail := fmt.Sprintf("%s: %s rejects the key in %s", v.Status, p.Title, key.from)
		if v.Reason != "" {
			detail += " (" + v.Reason + ")"
		}
		return fail(p.Name, detail, keyFix(p, key))
	case v.Limited && p.Rotation == providers.RotationAutomatic:
		fix := fmt.Sprintf("set %s (%s) to a full_access key", p.ConfigKey, config.EnvVar(p.ConfigKey))
		if key.stored {
			fix = fmt.Sprintf("create a full_access key in the %s dashboard and pipe it into `crmflow credentials set %s` (a limited key cannot rotate itself)",
				p.Title, p.Key.Provider)
		}
		return fail(p.Name, fmt.Sprintf("%s: the key in %s is limited: %s", v.Status, key.from, v.Reason), fix)
	case v.Limited:
		return pass(p.Name, fmt.Sprintf("key accepted with limits (%s %s: %s); key from %s", p.Probe, v.Status, v.Reason, key.from))
	}
	return pass(p.Name, fmt.Sprintf("key accepted (%s); key from %s", p.Probe, key.from))
}

// consoleResult reports a provider the worker runs in console mode, and
// whether the credential store holds a key the worker therefore ignores.
func (c *Checker) consoleResult(ctx context.Context, creds *credentials.Store, p providers.Provider) Result {
	fix := fmt.Sprintf("set %s (%s) to send for real", p.ConfigKey, config.EnvVar(p.ConfigKey))
	if creds != nil {
		if versions, err := creds.Versions(ctx, p.Key.Provider, p.Key.Name); err == nil && len(versions) > 0 {
			return pass(p.Name, "console mode: no key configured, calls are recorded, not sent; the credential store's keys are not used").withFix(
				fmt.Sprintf("set %s (%s) and restart the worker to send for real, with the key the credential store holds", p.ConfigKey, config.EnvVar(p.ConfigKey)))
		}
	}
	return pass(p.Name, "console mode: no key, calls are recorded, not sent").withFix(fix)
}

func (r Result) withFix(fix string) Result {
	r.Fix = fix
	return r
}

// keyFix says how to replace a key that does not work.
func keyFix(p providers.Provider, key providerKey) string {
	if !key.stored {
		return fmt.Sprintf("set %s (%s) to a working key", p.ConfigKey, config.EnvVar(p.ConfigKey))
	}
	return rotateFix(p)
}

// rotateFix says how to put a working key into the credential store.
func rotateFix(p providers.Provider) string {
	if p.Rotation == providers.RotationAutomatic {
		// The automatic rotation authenticates with the current key to
		// create the next one, so it cannot recover from a rejected key.
		return fmt.Sprintf("%s's automatic rotation needs a working key to create the next one: create a key in the %s dashboard and pipe it into `crmflow credentials set %s`",
			p.Title, p.Title, p.Key.Provider)
	}
	return fmt.Sprintf("rotate it: `crmflow rotation start %s`, then pipe a working key into `crmflow rotation submit-key %s`", p.Name, p.Name)
}
