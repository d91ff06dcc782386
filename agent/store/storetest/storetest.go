// Package storetest opens throw-away stores for tests, in the manner of
// bbolt's internal/btesting: a file in t.TempDir, closed at cleanup.
package storetest

import (
	"path/filepath"
	"testing"

	"github.com/camgate/camgate/agent/store"
)

// New opens a fresh store in a temporary directory and closes it when the
// test ends.
func New(tb testing.TB, opts store.Options) *store.Store {
	tb.Helper()
	return Open(tb, filepath.Join(tb.TempDir(), store.FileName), opts)
}

// Open opens the store at path and closes it when the test ends (Close is
// safe to call earlier, e.g. to reopen the same file).
func Open(tb testing.TB, path string, opts store.Options) *store.Store {
	tb.Helper()
	s, err := store.Open(path, opts)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
