package credentials

import (
	"sync"
	"time"
)

// Cache kinds: Active and Valid answer different questions about one key.
const (
	kindActive = "active"
	kindValid  = "valid"
	// kindValidPending is valid or pending, over every name of a provider
	// (name "*"): the token set.
	kindValidPending = "valid+pending"
	// kindPending is the pending versions of one key.
	kindPending = "pending"
)

// cache is the store's read-through cache of decrypted credentials, keyed by
// kind, provider and name. A nil cache caches nothing.
type cache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
	// gen counts changes. A read that started before a change must not
	// cache what it read, or this process would serve the old value after
	// its own change committed.
	gen uint64
}

type cacheKey struct{ kind, provider, name string }

type cacheEntry struct {
	expires time.Time
	creds   []Credential
}

// newCache returns a cache keeping answers for ttl, or nil when ttl <= 0.
func newCache(ttl time.Duration) *cache {
	if ttl <= 0 {
		return nil
	}
	return &cache{ttl: ttl, entries: map[cacheKey]cacheEntry{}}
}

// get returns a copy of a fresh entry, so callers cannot alter the cache.
func (c *cache) get(kind, provider, name string) ([]Credential, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[cacheKey{kind, provider, name}]
	if !ok || !time.Now().Before(e.expires) {
		return nil, false
	}
	return append([]Credential(nil), e.creds...), true
}

// generation is taken before a database read and handed to put.
func (c *cache) generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches creds read at generation gen, unless a change came since.
func (c *cache) put(gen uint64, kind, provider, name string, creds []Credential) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.entries[cacheKey{kind, provider, name}] = cacheEntry{
		expires: time.Now().Add(c.ttl),
		creds:   append([]Credential(nil), creds...),
	}
}

// forget drops both kinds of entry for provider/name after a change.
func (c *cache) forget(provider, name string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, cacheKey{kindActive, provider, name})
	delete(c.entries, cacheKey{kindValid, provider, name})
	delete(c.entries, cacheKey{kindPending, provider, name})
	// The provider's entries over every name hold this name's versions too.
	delete(c.entries, cacheKey{kindValid, provider, "*"})
	delete(c.entries, cacheKey{kindValidPending, provider, "*"})
}

func (c *cache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.entries)
}
