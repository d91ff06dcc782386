package store_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/store/storetest"
)

func TestJournalBeginFinish(t *testing.T) {
	s := storetest.New(t, store.Options{})
	e, found, err := s.BeginCommand("r1", "ping")
	if err != nil || found || e.State != store.CommandPending {
		t.Fatalf("first Begin: %+v %v %v", e, found, err)
	}
	e, found, _ = s.BeginCommand("r1", "ping")
	if !found || e.State != store.CommandPending || e.Reply != nil {
		t.Fatalf("second Begin before Finish: %+v %v", e, found)
	}
	if err := s.FinishCommand("r1", "ping", []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	e, found, _ = s.BeginCommand("r1", "ping")
	if !found || e.State != store.CommandDone || string(e.Reply) != `{"ok":true}` || e.Cmd != "ping" {
		t.Fatalf("Begin after Finish: %+v %v", e, found)
	}
	if _, err := s.Command("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Command(nope): %v", err)
	}
	if e.State.String() != "done" || store.CommandUnknown.String() != "unknown" {
		t.Fatal("state strings")
	}
}

func TestJournalPrune(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := storetest.New(t, store.Options{Now: func() time.Time { return now }})
	for i := range 10 {
		now = now.Add(time.Minute)
		id := fmt.Sprintf("c%d", i)
		s.BeginCommand(id, "ping")
		s.FinishCommand(id, "ping", []byte(`{}`))
	}
	// Ages now: c0 9m ... c9 0m. Older than 4m30s (c0..c4) go.
	n, err := s.PruneCommands(4*time.Minute+30*time.Second, 0)
	if err != nil || n != 5 {
		t.Fatalf("prune by age: %d %v", n, err)
	}
	// Keep the 2 newest (c8, c9).
	n, err = s.PruneCommands(0, 2)
	if err != nil || n != 3 {
		t.Fatalf("prune by count: %d %v", n, err)
	}
	for i := range 10 {
		_, err := s.Command(fmt.Sprintf("c%d", i))
		if want := i >= 8; (err == nil) != want {
			t.Fatalf("c%d present=%v want %v", i, err == nil, want)
		}
	}
}
