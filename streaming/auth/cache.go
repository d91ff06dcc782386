package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
	"time"
)

// cache remembers successful argon2 verifications for a while, so a
// reader whose player sends its credentials with every request (RTSP does,
// on DESCRIBE, each SETUP, ...) pays for one hash, not one per request.
//
// An entry is an HMAC-SHA256, under a random key made when the
// Authenticator is, of the user name, the password sent and the stored
// hash: the cache holds no password and nothing that verifies one without
// the key, and an entry stops matching as soon as the stored hash changes.
// Only successes are cached. Entries expire after ttl and are never
// refreshed, so insertion order is expiry order and a ring of size
// entries bounds the memory.
type cache struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	mac  hash.Hash // keyed HMAC-SHA256, reset before each use
	buf  []byte    // scratch for the MAC's input and output
	m    map[[sha256.Size]byte]time.Time
	ring []cacheEntry // insertions, oldest at head
	head int
	n    int
}

type cacheEntry struct {
	key     [sha256.Size]byte
	expires time.Time
}

func newCache(size int, ttl time.Duration, now func() time.Time) *cache {
	var k [32]byte
	_, _ = rand.Read(k[:]) // crypto/rand.Read does not fail
	return &cache{
		ttl:  ttl,
		now:  now,
		mac:  hmac.New(sha256.New, k[:]),
		m:    map[[sha256.Size]byte]time.Time{},
		ring: make([]cacheEntry, size),
	}
}

// sum is the cache key of a verification; s.mu is held.
func (c *cache) sum(user, pass, stored string) (k [sha256.Size]byte) {
	b := c.buf[:0]
	for _, s := range [...]string{user, pass, stored} {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	c.mac.Reset()
	c.mac.Write(b)
	clear(b)
	c.buf = c.mac.Sum(b[:0])
	copy(k[:], c.buf)
	return k
}

// maxCached bounds the user name plus password a cache entry is made
// for, so the scratch buffer stays small; longer ones are verified every
// time.
const maxCached = 1024

// has reports whether user logged in with pass against stored within ttl.
func (c *cache) has(user, pass, stored string) bool {
	if len(user)+len(pass) > maxCached {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	exp, ok := c.m[c.sum(user, pass, stored)]
	return ok && c.now().Before(exp)
}

// add remembers a successful verification.
func (c *cache) add(user, pass, stored string) {
	if len(user)+len(pass) > maxCached {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for c.n > 0 && (c.n == len(c.ring) || !now.Before(c.ring[c.head].expires)) {
		c.pop()
	}
	k := c.sum(user, pass, stored)
	e := cacheEntry{key: k, expires: now.Add(c.ttl)}
	c.ring[(c.head+c.n)%len(c.ring)] = e
	c.n++
	c.m[k] = e.expires
}

// pop drops the oldest insertion; its key goes unless re-added since.
func (c *cache) pop() {
	e := c.ring[c.head]
	if exp, ok := c.m[e.key]; ok && exp.Equal(e.expires) {
		delete(c.m, e.key)
	}
	c.ring[c.head] = cacheEntry{}
	c.head = (c.head + 1) % len(c.ring)
	c.n--
}

// len is the number of keys held, expired or not.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
