package store

import "io"

// checkFile looks for damage in the bbolt file read through r: the meta
// pages, the size against the high-water mark, the freelist, and every
// tree from the root bucket (page types, bounds, key order, each page used
// once and never while free). With shallow set, the leaf pages of those
// top-level buckets are not read (see Options.FullCheck) and pages that
// are neither in use nor free are not looked for. It returns the file's
// pages as bbolt will see them. visit, when set, receives the records read.
func checkFile(r io.ReaderAt, size int64, shallow func(bucket string) bool, visit func(path []string, k, v []byte)) (*pageFile, error) {
	pf, err := openPageFile(r, size, false)
	if err != nil {
		return nil, err
	}
	w := newWalker(pf, true)
	w.shallow, w.visit = shallow, visit
	err = protect(func() error {
		if err := w.freelist(); err != nil {
			return err
		}
		if err := w.root(); err != nil {
			return err
		}
		if shallow == nil {
			return w.unreachable()
		}
		return nil
	})
	return pf, err
}

// bigBucket names the bucket that grows large, the outbox, whose leaves the
// cheap check leaves alone. Its reads at run time are protected (see
// Store.protect), so damage found there leads to a clean restart and a
// full check rather than a crash.
func bigBucket(name string) bool { return name == string(bucketOutbox) }
