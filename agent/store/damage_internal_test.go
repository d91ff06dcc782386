package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/camgate/camgate/agent/conf"
)

// The damage table: a state file written by the store is damaged in one
// way per case, and a child process (this test binary again) opens it, so
// a fault or a panic fails the case instead of killing the test binary.

const (
	envChild   = "CAMGATE_STORE_DAMAGE_CHILD" // the file the child opens
	envTimeout = "CAMGATE_STORE_DAMAGE_TIMEOUT"
	envRO      = "CAMGATE_STORE_DAMAGE_READONLY" // a directory the child remounts read-only
	resultMark = "DAMAGE-RESULT "
)

// openResult is what the child saw in one Open.
type openResult struct {
	Err        string    `json:"err,omitempty"`
	Recovered  *Recovery `json:"recovered,omitempty"`
	AgentID    string    `json:"agentId"`
	Paths      []string  `json:"paths"`
	Outbox     int       `json:"outbox"`
	OutboxErr  string    `json:"outboxErr,omitempty"`
	Damaged    bool      `json:"damaged"` // Damaged() was closed
	BootCount  uint64    `json:"bootCount"`
	AppendSeq  uint64    `json:"appendSeq"`
	CommandOK  bool      `json:"commandOk"`
	StatsBytes uint64    `json:"statsBytes"`
}

// TestDamageChild is the child's side; it does nothing in a normal run.
func TestDamageChild(t *testing.T) {
	path := os.Getenv(envChild)
	if path == "" {
		t.Skip("the child of TestDamagedFileOpens")
	}
	if dir := os.Getenv(envRO); dir != "" {
		if err := remountReadOnly(dir); err != nil {
			t.Fatal(err)
		}
	}
	timeout, _ := time.ParseDuration(os.Getenv(envTimeout))
	var res [2]openResult
	for i := range res {
		res[i] = childOpen(path, timeout)
		if res[i].Err != "" {
			break
		}
	}
	b, _ := json.Marshal(res)
	fmt.Println(resultMark + string(b))
}

func childOpen(path string, timeout time.Duration) (r openResult) {
	s, err := Open(path, Options{Timeout: timeout})
	if err != nil {
		r.Err = err.Error()
		return r
	}
	r.Recovered, r.BootCount = s.Recovered(), s.BootCount()
	r.AgentID, _ = s.AgentID(func() (string, error) { return "", errors.New("none stored") })
	paths, _ := s.FleetPaths()
	for name := range paths {
		r.Paths = append(r.Paths, name)
	}
	slices.Sort(r.Paths)
	msgs, err := s.OutboxAfter(0, 1<<30)
	if err != nil {
		r.OutboxErr = err.Error()
	}
	r.Outbox = len(msgs)
	select {
	case <-s.Damaged():
		r.Damaged = true
	default:
	}
	if e, err := s.Command("cmd-1"); err == nil && e.State == CommandDone {
		r.CommandOK = true
	}
	if st, err := s.AllPathStats(); err == nil {
		r.StatsBytes = st["cam1"].BytesIn
	}
	if !r.Damaged {
		r.AppendSeq, _, _ = s.AppendOutbox("events", func(seq uint64) ([]byte, error) {
			return fmt.Appendf(nil, `{"seq":%d}`, seq), nil
		})
	}
	if err := s.Close(); err != nil {
		r.Err = "close: " + err.Error()
	}
	return r
}

// base describes the healthy file every case starts from.
type base struct {
	content   []byte
	size      int64
	psz       int64
	hwm       uint64
	seq       uint64
	outbox    int
	boot      uint64
	root      uint64   // the root bucket's page
	freelist  uint64   // the freelist page
	keyPages  []uint64 // pages holding the meta and paths buckets
	obRoot    uint64   // the outbox bucket's root page
	obLeaf    uint64   // a leaf in the middle of the outbox
	obLeafLen int      // records on it
}

var basePaths = []string{"cam1", "cam2", "door"}

// makeBase writes the healthy file: an agent id, fleet paths, a command,
// stats and an outbox of a few thousand messages, partly drained. clean
// says whether its last run stopped cleanly.
func makeBase(t *testing.T, path string, clean bool) base {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AgentID(func() (string, error) { return "cg-damage", nil }); err != nil {
		t.Fatal(err)
	}
	for _, name := range basePaths {
		if err := s.PutFleetPath(name, conf.PathConf{Source: conf.SecretURL("rtsp://u:p@10.0.0.1/" + name)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.BeginCommand("cmd-1", "ping"); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishCommand("cmd-1", "ping", []byte(`{"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPathStats(map[string]PathStats{"cam1": {BytesIn: 12345}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutDesiredState([]byte(`{"version":7}`), []byte(`{"version":7,"ok":true}`)); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("h"), 300)
	for range 4 {
		err := s.update(func(tx *bolt.Tx) error {
			for range 1000 {
				s.obSeq++
				v := encodeRecord("health", append(fmt.Appendf(nil, `{"seq":%d,"p":"`, s.obSeq), append(payload, `"}`...)...))
				if err := tx.Bucket(bucketOutbox).Put(u64(s.obSeq), v); err != nil {
					return err
				}
			}
			return putUint(tx.Bucket(bucketMeta), keyOutboxSeq, s.obSeq)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var drained []uint64
	for seq := uint64(1); seq <= 600; seq++ {
		drained = append(drained, seq)
	}
	if err := s.DeleteOutbox(drained...); err != nil {
		t.Fatal(err)
	}
	b := base{seq: s.obSeq, outbox: 3400, boot: s.BootCount()}
	if b.seq != 4000 {
		t.Fatalf("seq %d", b.seq)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !clean {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { return putUint(tx.Bucket(bucketMeta), keyRunning, 1) }); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	b.content, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b.size = int64(len(b.content))
	pf, err := openPageFile(bytes.NewReader(b.content), b.size, false)
	if err != nil {
		t.Fatal(err)
	}
	b.psz, b.hwm, b.root, b.freelist = pf.psz, pf.meta.hwm, pf.meta.root, pf.meta.freelist
	b.keyPages = []uint64{b.root}
	rootPage, err := pf.readPage(b.root)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rootPage.count {
		k, v, _, err := rootPage.leaf(i)
		if err != nil {
			t.Fatal(err)
		}
		id := ne.Uint64(v)
		switch string(k) {
		case string(bucketMeta), string(bucketPaths):
			if id != 0 {
				b.keyPages = append(b.keyPages, id) // small enough for one page
			}
		case string(bucketOutbox):
			b.obRoot = id
		}
	}
	obr, err := pf.readPage(b.obRoot)
	if err != nil || obr.flags != flagBranch || obr.count < 3 {
		t.Fatalf("outbox root page %d: flags %#x count %d %v; want a branch", b.obRoot, obr.flags, obr.count, err)
	}
	leaf := obr
	for leaf.flags == flagBranch {
		_, b.obLeaf, _ = leaf.branch(leaf.count / 2)
		if leaf, err = pf.readPage(b.obLeaf); err != nil {
			t.Fatal(err)
		}
	}
	if leaf.flags != flagLeaf {
		t.Fatalf("outbox leaf %d: flags %#x", b.obLeaf, leaf.flags)
	}
	b.obLeafLen = leaf.count
	return b
}

func writePage(t *testing.T, path string, b base, id uint64, random bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, b.psz)
	if random {
		rng := rand.New(rand.NewPCG(id, 7))
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
	}
	if _, err := f.WriteAt(buf, int64(id)*b.psz); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

type damageCase struct {
	name  string
	clean bool // the base's last run stopped cleanly (only the cheap check at open)
	// damage changes the file and returns the pages it spoiled (nil: none
	// of the pages holding the agent id and fleet paths).
	damage func(t *testing.T, path string, b base) (hit func(id uint64) bool)
	moved  bool   // the file must be moved aside at the first open
	sound  bool   // the damage leaves the file sound: nothing to report
	fails  string // Open must fail with this text and leave the file alone
	skip   string
	child  func(cmd *exec.Cmd, dir string)
}

func cut(size int64, psz int64) func(uint64) bool {
	return func(id uint64) bool { return int64(id+1)*psz > size }
}

func pages(ids ...uint64) func(uint64) bool {
	return func(id uint64) bool { return slices.Contains(ids, id) }
}

func everything(uint64) bool { return true }

func damageCases() []damageCase {
	trunc := func(size func(b base) int64) func(t *testing.T, path string, b base) func(uint64) bool {
		return func(t *testing.T, path string, b base) func(uint64) bool {
			truncate(t, path, size(b))
			return cut(size(b), b.psz)
		}
	}
	page := func(id func(b base) uint64, random bool) func(t *testing.T, path string, b base) func(uint64) bool {
		return func(t *testing.T, path string, b base) func(uint64) bool {
			writePage(t, path, b, id(b), random)
			return pages(id(b))
		}
	}
	whole := func(content func() []byte) func(t *testing.T, path string, b base) func(uint64) bool {
		return func(t *testing.T, path string, b base) func(uint64) bool {
			if err := os.WriteFile(path, content(), 0o600); err != nil {
				t.Fatal(err)
			}
			return everything
		}
	}
	cases := []damageCase{
		{name: "empty", damage: trunc(func(base) int64 { return 0 }), moved: true},
		{name: "shorter than a page", damage: trunc(func(base) int64 { return 100 }), moved: true},
		{name: "10 KB", damage: trunc(func(base) int64 { return 10 << 10 }), moved: true},
		{name: "half", damage: trunc(func(b base) int64 { return b.size/2 + 123 }), moved: true},
		{name: "one byte short of the pages in use", damage: trunc(func(b base) int64 { return int64(b.hwm)*b.psz - 1 }), moved: true},
		{name: "one byte short of the file", damage: trunc(func(b base) int64 { return b.size - 1 }), sound: true},
		{name: "meta 0 zeroed", damage: page(func(base) uint64 { return 0 }, false)},
		{name: "meta 1 random", damage: page(func(base) uint64 { return 1 }, true)},
		{name: "both metas zeroed", damage: func(t *testing.T, path string, b base) func(uint64) bool {
			writePage(t, path, b, 0, false)
			writePage(t, path, b, 1, false)
			return everything // without a meta nothing is found through the tree
		}, moved: true},
		{name: "freelist zeroed", damage: page(func(b base) uint64 { return b.freelist }, false), moved: true},
		{name: "freelist random", damage: page(func(b base) uint64 { return b.freelist }, true), moved: true},
		{name: "root bucket page zeroed", damage: page(func(b base) uint64 { return b.root }, false), moved: true},
		{name: "outbox root zeroed", damage: page(func(b base) uint64 { return b.obRoot }, false), moved: true},
		{name: "outbox leaf random", damage: page(func(b base) uint64 { return b.obLeaf }, true), moved: true},
		// The cheap check does not read the outbox's leaves, but counting
		// the outbox at open walks them through bbolt, under protection.
		{name: "outbox leaf zeroed after a clean stop", clean: true, damage: page(func(b base) uint64 { return b.obLeaf }, false), moved: true},
		{name: "freelist zeroed after a clean stop", clean: true, damage: page(func(b base) uint64 { return b.freelist }, false), moved: true},
		{name: "garbage", damage: whole(func() []byte {
			rng := rand.New(rand.NewPCG(1, 2))
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return b
		}), moved: true},
		{name: "text", damage: whole(func() []byte { return []byte("not a database\n") }), moved: true},
		{name: "directory", damage: func(t *testing.T, path string, b base) func(uint64) bool {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(path, "x"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			return everything
		}, moved: true},
		{name: "damaged and locked by another open", damage: func(t *testing.T, path string, b base) func(uint64) bool {
			truncate(t, path, 10<<10)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			if err := lockFile(f, time.Second); err != nil {
				t.Fatal(err)
			}
			return everything
		}, fails: "another camgate is using it"},
	}
	cases = append(cases, platformCases()...)
	return cases
}

func TestDamagedFileOpens(t *testing.T) {
	if testing.Short() {
		t.Skip("writes two dozen files and starts as many processes")
	}
	bases := map[bool]base{}
	for _, clean := range []bool{false, true} {
		bases[clean] = makeBase(t, filepath.Join(t.TempDir(), FileName), clean)
	}
	b := bases[false]
	t.Logf("base: %d bytes, %d pages of %d in use, root %d, freelist %d, outbox root %d, leaf %d (%d records), key pages %v",
		b.size, b.hwm, b.psz, b.root, b.freelist, b.obRoot, b.obLeaf, b.obLeafLen, b.keyPages)
	for _, tc := range damageCases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			b := bases[tc.clean]
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, b.content, 0o600); err != nil {
				t.Fatal(err)
			}
			hit := tc.damage(t, path, b)
			var damaged []byte // nil for a directory or a fifo
			if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
				damaged, _ = os.ReadFile(path)
			}
			res := runChild(t, path, dir, tc.child)
			first := res[0]

			if tc.fails != "" {
				if !strings.Contains(first.Err, tc.fails) {
					t.Fatalf("Open: %q, want an error with %q", first.Err, tc.fails)
				}
				if now, _ := os.ReadFile(path); !bytes.Equal(now, damaged) && os.Geteuid() == 0 {
					t.Fatal("a file that failed to open was changed")
				}
				if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) > 0 {
					t.Fatalf("moved aside: %v", m)
				}
				return
			}
			for i, r := range res {
				if r.Err != "" {
					t.Fatalf("open %d: %s", i+1, r.Err)
				}
			}
			second := res[1]
			if second.Recovered != nil {
				t.Fatalf("second open recovered again: %+v", second.Recovered)
			}
			moved := first
			rec := moved.Recovered
			if tc.moved {
				if rec == nil || rec.MovedTo == "" {
					t.Fatalf("not moved aside: %+v", rec)
				}
				if !strings.HasPrefix(rec.MovedTo, path+".corrupt-") {
					t.Fatalf("moved to %q", rec.MovedTo)
				}
				if fi, err := os.Stat(rec.MovedTo); err != nil {
					t.Fatalf("moved file: %v", err)
				} else if fi.Mode().IsRegular() {
					if old, _ := os.ReadFile(rec.MovedTo); !bytes.Equal(old, damaged) {
						t.Fatal("the moved file is not the damaged file")
					}
				}
			} else if tc.sound {
				if rec != nil {
					t.Fatalf("recovered %+v from a sound file", rec)
				}
			} else if rec == nil || rec.MovedTo != "" || rec.SeqSkipped != 1 {
				t.Fatalf("a torn meta page must be reported and seq stepped, nothing moved: %+v", rec)
			}

			// What can be read survives; seq never goes backwards.
			intact := hit == nil || !slices.ContainsFunc(b.keyPages, hit)
			if intact {
				if moved.AgentID != "cg-damage" || !slices.Equal(moved.Paths, basePaths) {
					t.Fatalf("agent id %q and paths %v, want cg-damage and %v", moved.AgentID, moved.Paths, basePaths)
				}
				if !moved.CommandOK || moved.StatsBytes != 12345 {
					t.Fatalf("journal %v, stats %d: lost although readable", moved.CommandOK, moved.StatsBytes)
				}
				if moved.BootCount != b.boot+1 {
					t.Fatalf("boot count %d, base %d", moved.BootCount, b.boot)
				}
			}
			if first.AppendSeq <= b.seq || second.AppendSeq <= first.AppendSeq {
				t.Fatalf("seq went backwards: base %d, then %d, %d", b.seq, first.AppendSeq, second.AppendSeq)
			}
			switch tc.name {
			case "freelist zeroed", "freelist random", "meta 0 zeroed", "meta 1 random", "freelist zeroed after a clean stop", "one byte short of the file":
				if moved.Outbox != b.outbox {
					t.Fatalf("outbox %d, want all %d", moved.Outbox, b.outbox)
				}
			case "outbox leaf random", "outbox leaf zeroed after a clean stop":
				if moved.Outbox != b.outbox-b.obLeafLen || rec.Buckets["outbox"].LostPages != 1 {
					t.Fatalf("outbox %d (%+v), want %d", moved.Outbox, rec.Buckets["outbox"], b.outbox-b.obLeafLen)
				}
			}
			if rec != nil {
				t.Logf("recovery: %+v", *rec)
			}
		})
	}
}

// runChild opens path in a child process and returns what it saw; a
// crash fails the test with the child's output.
func runChild(t *testing.T, path, dir string, setup func(*exec.Cmd, string)) [2]openResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDamageChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"="+path, envTimeout+"=300ms")
	if setup != nil {
		setup(cmd, dir)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the child crashed (%v):\n%s", err, out)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("the child took %s", el)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), resultMark); ok {
			var res [2]openResult
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				t.Fatal(err)
			}
			return res
		}
	}
	t.Fatalf("no result from the child:\n%s", out)
	return [2]openResult{}
}

// TestCheckDepthFollowsCleanStop: after a clean stop the check at open
// leaves the outbox's leaves alone; after an unclean one (or with
// FullCheck) it reads them.
func TestCheckDepthFollowsCleanStop(t *testing.T) {
	for _, clean := range []bool{true, false} {
		path := filepath.Join(t.TempDir(), FileName)
		b := makeBase(t, path, clean)
		writePage(t, path, b, b.obLeaf, false)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, cheap := check(f, b.size, false)
		_, full := check(f, b.size, true)
		f.Close()
		if (cheap == nil) != clean || !errors.Is(full, ErrDamaged) {
			t.Fatalf("clean stop %v: check %v, full check %v", clean, cheap, full)
		}
	}
}

// TestDamageFoundWhileRunning: a page that goes bad under a running store
// is reported as ErrDamaged and on Damaged, not as a crash; the file stays
// marked as running, so the next Open checks every page and recovers it.
func TestDamageFoundWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	b := makeBase(t, path, true)
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	writePage(t, path, b, b.obLeaf, false) // under the running store
	if _, err := s.OutboxAfter(0, 1<<30); !errors.Is(err, ErrDamaged) {
		t.Fatalf("reading a damaged page: %v", err)
	}
	select {
	case <-s.Damaged():
	default:
		t.Fatal("Damaged not closed")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := s.Recovered()
	if r == nil || r.MovedTo == "" || r.Buckets["outbox"].Recovered != b.outbox-b.obLeafLen {
		t.Fatalf("recovered %+v", r)
	}
	if st, _ := s.OutboxStats(); st.Depth != b.outbox-b.obLeafLen || st.LastSeq != b.seq {
		t.Fatalf("outbox %+v after recovery", st)
	}
}

// TestInterruptedRecoveryFinishes: a power cut between moving the damaged
// file aside and putting the fresh one in place loses nothing; one while
// the fresh file is written leaves the damaged file, recovered again.
func TestInterruptedRecoveryFinishes(t *testing.T) {
	t.Run("after moving aside", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), FileName)
		b := makeBase(t, path, false)
		writePage(t, path, b, b.freelist, false)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		aside := path + ".corrupt-test"
		opts := Options{}
		opts.fill()
		if _, err := rebuild(path+recoveringSuffix, f, b.size, aside, damagedf("test"), opts); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.Rename(path, aside); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		paths, _ := s.FleetPaths()
		if r := s.Recovered(); r == nil || r.MovedTo != aside || len(paths) != len(basePaths) {
			t.Fatalf("recovered %+v, %d paths", r, len(paths))
		}
	})
	t.Run("while writing the fresh file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), FileName)
		b := makeBase(t, path, false)
		writePage(t, path, b, b.freelist, false)
		if err := os.WriteFile(path+recoveringSuffix, []byte("half a file"), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		paths, _ := s.FleetPaths()
		if r := s.Recovered(); r == nil || !strings.HasPrefix(r.MovedTo, path+".corrupt-") || len(paths) != len(basePaths) {
			t.Fatalf("recovered %+v, %d paths", r, len(paths))
		}
		// The desired state survives too: a box that lost it would apply
		// an older version, or none, until the fleet writes again.
		if d, rep, err := s.DesiredState(); err != nil || string(d) != `{"version":7}` || string(rep) != `{"version":7,"ok":true}` {
			t.Fatalf("desired state after recovery: %s %s %v", d, rep, err)
		}
		if _, err := os.Stat(path + recoveringSuffix); !os.IsNotExist(err) {
			t.Fatalf("leftover: %v", err)
		}
	})
}

const envRandom = "CAMGATE_STORE_RANDOM_DAMAGE_CHILD"

// TestRandomDamageNeverCrashes damages copies of a state file at random
// (pages overwritten, bits flipped, sectors zeroed, the end cut off) in a
// child process: every copy opens, reads back, closes, and opens again
// without a recovery; a fault or panic fails the test with the round.
func TestRandomDamageNeverCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("a hundred damaged files in a child process")
	}
	path := filepath.Join(t.TempDir(), FileName)
	makeBase(t, path, false)
	cmd := exec.Command(os.Args[0], "-test.run=^TestRandomDamageChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envRandom+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestRandomDamageChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "rounds:") {
			t.Log(strings.TrimSpace(l))
		}
	}
}

func TestRandomDamageChild(t *testing.T) {
	basePath := os.Getenv(envRandom)
	if basePath == "" {
		t.Skip("the child of TestRandomDamageNeverCrashes")
	}
	content, err := os.ReadFile(basePath)
	if err != nil {
		t.Fatal(err)
	}
	pf, err := openPageFile(bytes.NewReader(content), int64(len(content)), false)
	if err != nil {
		t.Fatal(err)
	}
	used := int(pf.meta.hwm) * int(pf.psz)
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("CAMGATE_STORE_RANDOM_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("seed %d (CAMGATE_STORE_RANDOM_SEED repeats a run)", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	const rounds = 100
	var moved, repaired, sound int
	for round := range rounds {
		b := bytes.Clone(content)
		what := ""
		switch kind := rng.IntN(4); kind {
		case 0:
			for range 1 + rng.IntN(4) {
				id := 2 + rng.IntN(int(pf.meta.hwm)-2)
				for i := range int(pf.psz) {
					b[id*int(pf.psz)+i] = byte(rng.Uint32())
				}
				what += fmt.Sprintf("page %d random; ", id)
			}
		case 1:
			for range 1 + rng.IntN(20) {
				off := rng.IntN(used)
				b[off] ^= 1 << rng.IntN(8)
				what += fmt.Sprintf("bit at %d; ", off)
			}
		case 2:
			off, n := rng.IntN(used/512)*512, 512*(1+rng.IntN(32))
			clear(b[off:min(off+n, len(b))])
			what = fmt.Sprintf("zeros %d+%d", off, n)
		case 3:
			n := rng.IntN(len(b))
			b = b[:n]
			what = fmt.Sprintf("cut at %d", n)
		}
		path := filepath.Join(t.TempDir(), FileName)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		full := round%2 == 0
		s, err := Open(path, Options{FullCheck: full})
		if err != nil {
			t.Fatalf("round %d (%s): %v", round, what, err)
		}
		switch r := s.Recovered(); {
		case r == nil:
			sound++
		case r.MovedTo != "":
			moved++
		default:
			repaired++
		}
		_, _ = s.FleetPaths()
		_, _ = s.OutboxAfter(0, 1<<30)
		_, _ = s.AllPathStats()
		_, _ = s.Command("cmd-1")
		_, _ = s.AgentID(func() (string, error) { return "cg-new", nil })
		if _, _, err := s.AppendOutbox("events", func(uint64) ([]byte, error) { return []byte("{}"), nil }); err != nil {
			t.Fatalf("round %d (%s): append: %v", round, what, err)
		}
		damaged := false
		select {
		case <-s.Damaged():
			damaged = true // found by a read: the next open recovers
		default:
		}
		if err := s.Close(); err != nil {
			t.Fatalf("round %d (%s): close: %v", round, what, err)
		}
		s, err = Open(path, Options{FullCheck: true})
		if err != nil {
			t.Fatalf("round %d (%s): second open: %v", round, what, err)
		}
		if r := s.Recovered(); r != nil && !damaged {
			t.Fatalf("round %d (%s): second open recovered again: %+v", round, what, r)
		}
		s.Close()
	}
	t.Logf("rounds: %d, moved aside %d, opened from the other meta %d, sound %d", rounds, moved, repaired, sound)
}
