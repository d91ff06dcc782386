package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// recoveringSuffix names the fresh file a recovery fills before it takes
// the damaged file's place: a power cut halfway leaves either the damaged
// file in place (the recovery starts over) or the complete fresh file
// under this name (Open puts it in place).
const recoveringSuffix = ".recovering"

// lockRetry is how often a wait for the file lock tries again.
const lockRetry = 50 * time.Millisecond

// prepare makes sure bbolt may open path: it takes bbolt's lock, checks
// the file with plain reads and, when the file is damaged (or force says
// so), builds a fresh file from what can be read, moves the damaged one
// aside and puts the fresh one in its place. It returns what it did (nil
// for a sound file) and the extra seq step init must take when bbolt will
// open the file from its older meta page. A file that cannot be opened
// for other reasons (permissions, read-only file system, lock held) is
// left as it is and the error returned.
func prepare(path string, opts Options, force error) (*Recovery, uint64, error) {
	if err := finishRecovery(path); err != nil {
		return nil, 0, err
	}
	for range 3 {
		rec, skip, replaced, err := prepareOnce(path, opts, force)
		if !replaced {
			return rec, skip, err
		}
	}
	return nil, 0, errors.New("the file was replaced three times while it was checked")
}

// finishRecovery completes a recovery cut short between moving the damaged
// file aside and putting the fresh one in place, and removes the leftover
// of one cut short before that.
func finishRecovery(path string) error {
	tmp := path + recoveringSuffix
	if _, err := os.Lstat(tmp); err != nil {
		return nil
	}
	if _, err := os.Lstat(path); os.IsNotExist(err) {
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("finish an interrupted recovery: %w", err)
		}
		syncDir(filepath.Dir(path))
		return nil
	}
	if err := os.Remove(tmp); err != nil {
		return fmt.Errorf("remove the leftover of an interrupted recovery: %w", err)
	}
	return nil
}

// prepareOnce is one attempt of prepare; replaced reports that the file
// at path changed while it waited for the lock.
func prepareOnce(path string, opts Options, force error) (rec *Recovery, seqSkip uint64, replaced bool, err error) {
	fi, err := os.Stat(path)
	switch {
	case os.IsNotExist(err):
		return nil, 0, false, nil // bbolt creates it
	case err != nil:
		return nil, 0, false, err
	case fi.IsDir():
		rec, err = replace(path, damagedf("a directory is in its place"), opts)
		return rec, 0, false, err
	case !fi.Mode().IsRegular():
		rec, err = replace(path, damagedf("not a regular file (%s)", fi.Mode().Type()), opts)
		return rec, 0, false, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, false, err
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
	}()
	if err := lockFile(f, opts.Timeout); err != nil {
		if errors.Is(err, ErrLocked) {
			return nil, 0, false, fmt.Errorf("%w (timeout %s)", ErrLocked, opts.Timeout)
		}
		return nil, 0, false, fmt.Errorf("lock: %w", err)
	}
	ffi, err := f.Stat()
	if err != nil {
		return nil, 0, false, err
	}
	if pfi, err := os.Stat(path); err != nil || !os.SameFile(ffi, pfi) {
		return nil, 0, true, nil // moved aside by another opener meanwhile
	}
	damage := force
	if damage == nil {
		var pf *pageFile
		pf, damage = check(f, ffi.Size(), opts.FullCheck)
		if damage == nil {
			if pf.metaErr != nil {
				// bbolt opens from the other meta page, which may be one
				// transaction old: step seq once so none repeats.
				return &Recovery{Damage: pf.metaErr.Error() + "; opened from the other meta page", SeqSkipped: 1}, 1, false, nil
			}
			return nil, 0, false, nil
		}
	}
	// The recovery reads the damaged file while holding its lock; the lock
	// goes before the rename (Windows renames no open file).
	rec, err = replaceLocked(path, f, ffi.Size(), damage, opts, func() {
		_ = unlockFile(f)
		_ = f.Close()
		f = nil
	})
	return rec, 0, false, err
}

// check runs the cheap check and, unless the file says its last run
// stopped cleanly, the full one (see Options.FullCheck). Besides bbolt's
// structure it decodes the records the agent needs to start (the agent id
// and the fleet paths): one that bbolt reads fine but camgate cannot
// decode is damage too, rather than an agent that never starts.
func check(f *os.File, size int64, full bool) (*pageFile, error) {
	clean := false
	var bad error
	pf, err := checkFile(f, size, bigBucket, func(path []string, k, v []byte) {
		if len(path) != 1 || bad != nil {
			return
		}
		switch {
		case path[0] == string(bucketPaths) && !validRecord(path[0], k, v):
			bad = damagedf("fleet path %q cannot be decoded", k)
		case path[0] == string(bucketMeta) && string(k) == string(keyAgentID) && !validAgentID(v):
			bad = damagedf("agent id cannot be decoded")
		case path[0] == string(bucketMeta) && string(k) == string(keyRunning):
			clean = len(v) == 8 && binary.BigEndian.Uint64(v) == 0
		}
	})
	if err == nil {
		err = bad
	}
	if err != nil || (clean && !full) {
		return pf, err
	}
	return checkFile(f, size, nil, nil)
}

// replace moves a damaged path that cannot be read aside.
func replace(path string, damage error, opts Options) (*Recovery, error) {
	return replaceLocked(path, nil, 0, damage, opts, func() {})
}

// replaceLocked builds the fresh file from src (nil: nothing to read),
// calls release (which closes src), then moves the damaged file aside and
// the fresh one in.
func replaceLocked(path string, src io.ReaderAt, size int64, damage error, opts Options, release func()) (*Recovery, error) {
	aside := asideName(path, opts.Now())
	tmp := path + recoveringSuffix
	rec, err := rebuild(tmp, src, size, aside, damage, opts)
	release()
	if err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("damaged (%v); building a fresh file failed: %w", damage, err)
	}
	if err := os.Rename(path, aside); err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("damaged (%v); moving it aside failed: %w", damage, err)
	}
	syncDir(filepath.Dir(path))
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("damaged (%v), moved to %s; putting the fresh file in place failed: %w", damage, aside, err)
	}
	syncDir(filepath.Dir(path))
	return rec, nil
}

// syncDir makes renames in dir durable where the system allows it (not on
// Windows, whose file systems journal renames themselves).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// openBolt opens a checked file with bbolt and runs init. A panic inside
// bbolt, or a fault on its memory map, becomes an error wrapping
// ErrDamaged: the check before should leave none, this is the second line.
// debug.SetPanicOnFault covers this goroutine only, which is the one bbolt
// reads on here.
func (s *Store) openBolt(path string, seqSkip uint64) (err error) {
	var file *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = damagedf("bbolt panicked: %v", r)
			if s.db != nil {
				_ = s.db.Close()
				s.db = nil
			} else if file != nil {
				_ = file.Close() // releases the lock; the map of a half-open file stays
			}
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		// NoSync stays false: a commit is on disk when Update returns.
		Timeout: s.opts.Timeout,
		OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, mode)
			file = f
			return f, err
		},
	})
	if err != nil {
		return err
	}
	s.db = db
	if err := s.init(seqSkip); err != nil {
		_ = db.Close()
		s.db = nil
		return err
	}
	return nil
}
