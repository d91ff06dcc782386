//go:build linux

package record

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/camgate/camgate/hal"
)

const envTmpfsChild = "RECORD_TMPFS_CHILD"

// Recording into a 5 MiB tmpfs never fills it: 15 MB of 2 Mbit/s video
// go in, the oldest segments make room, the default 5 % stays free, and
// no write fails. The tmpfs is mounted in a private mount namespace: the
// test runs itself again under `unshare -m` (root only).
func TestTmpfsNeverFills(t *testing.T) {
	if os.Getenv(envTmpfsChild) == "" {
		if os.Geteuid() != 0 {
			t.Skip("needs root: mounts a tmpfs in a private mount namespace")
		}
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("unshare not installed")
		}
		cmd := exec.Command("unshare", "-m", "--propagation", "private", "--",
			os.Args[0], "-test.run", "^TestTmpfsNeverFills$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), envTmpfsChild+"=1")
		out, err := cmd.CombinedOutput()
		t.Logf("inside unshare -m:\n%s", out)
		if err != nil || !strings.Contains(string(out), "--- PASS: TestTmpfsNeverFills") {
			t.Fatalf("test in the mount namespace failed: %v", err)
		}
		return
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=5m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	free0, total, err := hal.DiskUsage(dir)
	if err != nil || total > 6<<20 || free0 < 4<<20 {
		t.Fatalf("tmpfs: %d free of %d, %v", free0, total, err)
	}
	keep := total / 20
	h := newHarness(t, PathConfig{Record: true, SegmentDuration: 2 * time.Second, PartDuration: 500 * time.Millisecond},
		func(o *Options) {
			fast(o)
			o.BaseDir = dir
			o.DiskUsage = hal.DiskUsage
		})
	wall := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	f := publish(t, h.m, "cam", fakeAUs(25, 8500), true, wall) // ~2.1 Mbit/s with the audio
	waitFor(t, "the recorder to read", func() bool { return f.pub.Stream().Readers() == 1 })
	lowest := free0
	for range 60 {
		f.frames(25)
		waitFor(t, "the second to be written", func() bool {
			st, _ := h.rec.Status("cam")
			return st.Written >= uint64(f.n-25)*8500
		})
		free, _, err := hal.DiskUsage(dir)
		if err != nil {
			t.Fatal(err)
		}
		lowest = min(lowest, free)
		if free < keep {
			t.Fatalf("after %d s: %d bytes free, %d to keep", f.n/25, free, keep)
		}
	}
	f.pub.Close()
	segs := h.closedSegments("cam")
	st, _ := h.rec.Status("cam")
	if last := segs[len(segs)-1]; !last.end().Equal(wall.Add(60 * time.Second)) {
		t.Errorf("the last segment ends at %s, want the end of the recording", last.end())
	}
	if st.Written < 14<<20 {
		t.Errorf("%d bytes written: the test meant to write three times the volume", st.Written)
	}
	if errs := h.ev.of(EventError); len(errs) != 0 {
		t.Errorf("errors: %+v", errs)
	}
	t.Logf("%d bytes written into %d; lowest free %d (kept %d); %d segments left from %s",
		st.Written, total, lowest, keep, len(segs), segs[0].start.Format(time.TimeOnly))
}
