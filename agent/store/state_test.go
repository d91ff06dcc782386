package store_test

import (
	"path/filepath"
	"testing"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
)

func TestDesiredStatePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.FileName)
	s := storetest.Open(t, path, store.Options{})
	d, r, err := s.DesiredState()
	if err != nil || d != nil || r != nil {
		t.Fatalf("fresh store: %q %q %v", d, r, err)
	}
	if err := s.PutDesiredState([]byte(`{"version":3}`), []byte(`{"version":3,"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = storetest.Open(t, path, store.Options{})
	d, r, err = s.DesiredState()
	if err != nil || string(d) != `{"version":3}` || string(r) != `{"version":3,"ok":true}` {
		t.Fatalf("after reopen: %q %q %v", d, r, err)
	}
}
