package store

import (
	"bytes"
	"fmt"
)

// maxDepth bounds the nesting of pages and buckets a walk follows; bbolt's
// trees for camgate's few buckets are a handful of levels deep.
const maxDepth = 32

// walker follows bbolt's trees from the root bucket over a pageFile. In
// strict mode (the check at open) it stops at the first damage; otherwise
// (salvaging a damaged file) it skips what it cannot read, counts it and
// hands every readable record to visit. Every page is read at most once,
// so the work is bounded by the file's high-water mark.
type walker struct {
	pf     *pageFile
	strict bool
	reach  bitset // pages reached from the root or the meta
	free   bitset // pages on the freelist; nil when there is none
	// shallow, when set, names top-level buckets whose leaf pages are not
	// read (their branch pages and ids still are): the cheap check.
	shallow func(bucket string) bool
	// visit receives each record: the bucket path, key and value. The
	// slices stay valid after the call.
	visit func(path []string, k, v []byte)
	// lost counts pages (or inline buckets) that could not be read, by
	// top-level bucket ("" for the root); firstErr is the first problem.
	lost     map[string]int
	firstErr error
}

func newWalker(pf *pageFile, strict bool) *walker {
	w := &walker{pf: pf, strict: strict, reach: newBitset(pf.meta.hwm), lost: map[string]int{}}
	w.reach.set(0)
	w.reach.set(1)
	return w
}

// protect runs fn, turning a panic into a damage error: the parsing below
// checks its bounds, this is the second line.
func protect(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = damagedf("reading the file panicked: %v", r)
		}
	}()
	return fn()
}

// fail records err against the bucket at path; in strict mode it is
// returned to stop the walk, otherwise the walk goes on.
func (w *walker) fail(path []string, err error) error {
	if w.firstErr == nil {
		w.firstErr = err
	}
	top := ""
	if len(path) > 0 {
		top = path[0]
	}
	w.lost[top]++
	if w.strict {
		return err
	}
	return nil
}

// freelist reads the freelist page and marks its ids.
func (w *walker) freelist() error {
	id := w.pf.meta.freelist
	if id == noFreelist {
		return nil
	}
	p, err := w.pf.readPage(id)
	if err != nil {
		return err
	}
	ids, err := p.freelist()
	if err != nil {
		return err
	}
	w.mark(p)
	hwm := w.pf.meta.hwm
	w.free = newBitset(hwm)
	for _, f := range ids {
		if f < 2 || f >= hwm {
			return damagedf("freelist holds page %d outside 2..%d", f, hwm-1)
		}
		if w.free.has(f) {
			return damagedf("page %d freed twice", f)
		}
		w.free.set(f)
	}
	return nil
}

func (w *walker) mark(p page) {
	for i := uint64(0); i <= uint64(p.overflow); i++ {
		w.reach.set(p.id + i)
	}
}

// root walks the root bucket's tree.
func (w *walker) root() error {
	return w.tree(nil, w.pf.meta.root, nil, nil, 0)
}

// tree walks the subtree at page id, whose keys must lie in [lo, hi).
func (w *walker) tree(path []string, id uint64, lo, hi []byte, depth int) error {
	if depth > maxDepth {
		return w.fail(path, damagedf("page %d: nested deeper than %d", id, maxDepth))
	}
	if id < w.pf.meta.hwm && w.reach.has(id) {
		return w.fail(path, damagedf("page %d reached twice", id))
	}
	var p page
	err := protect(func() (err error) {
		p, err = w.pf.readPage(id)
		if err != nil {
			return err
		}
		for i := uint64(0); i <= uint64(p.overflow); i++ {
			if w.reach.has(id + i) {
				return damagedf("page %d reached twice", id+i)
			}
		}
		if w.free != nil && w.free.has(id) {
			return damagedf("page %d is in use and on the freelist", id)
		}
		return nil
	})
	if err != nil {
		return w.fail(path, err)
	}
	w.mark(p)
	return w.node(path, p, lo, hi, depth)
}

// node checks one page (or inline page) and walks what it points to.
func (w *walker) node(path []string, p page, lo, hi []byte, depth int) error {
	switch p.flags {
	case flagBranch:
		type child struct {
			key []byte
			id  uint64
		}
		var kids []child
		err := protect(func() error {
			if p.count == 0 {
				return damagedf("page %d: empty branch page", p.id)
			}
			kids = make([]child, p.count)
			for i := range kids {
				k, id, err := p.branch(i)
				if err != nil {
					return err
				}
				if !inRange(k, lo, hi) || (i > 0 && bytes.Compare(kids[i-1].key, k) >= 0) {
					return damagedf("page %d: key %d out of order", p.id, i)
				}
				kids[i] = child{k, id}
			}
			return nil
		})
		if err != nil {
			return w.fail(path, err)
		}
		// In a shallow bucket only the root page is read.
		leaves := len(path) > 0 && w.shallow != nil && w.shallow(path[0])
		for i, c := range kids {
			khi := hi
			if i+1 < len(kids) {
				khi = kids[i+1].key
			}
			if leaves {
				// Cheap check: ids only, the subtree is not read.
				if c.id < 2 || c.id >= w.pf.meta.hwm {
					return w.fail(path, damagedf("page %d: child %d outside the file", p.id, c.id))
				}
				continue
			}
			if err := w.tree(path, c.id, c.key, khi, depth+1); err != nil {
				return err
			}
		}
		return nil
	case flagLeaf:
		var prev []byte
		for i := 0; i < p.count; i++ {
			var (
				k, v     []byte
				isBucket bool
			)
			err := protect(func() (err error) {
				k, v, isBucket, err = p.leaf(i)
				if err != nil {
					return err
				}
				if !inRange(k, lo, hi) || (i > 0 && bytes.Compare(prev, k) >= 0) {
					return damagedf("page %d: key %d out of order", p.id, i)
				}
				return nil
			})
			if err != nil {
				// The rest of the page is not to be trusted either.
				return w.fail(path, err)
			}
			prev = k
			if isBucket {
				if err := w.bucket(append(path[:len(path):len(path)], string(k)), v, depth+1); err != nil {
					return err
				}
				continue
			}
			if w.visit != nil {
				_ = protect(func() error { w.visit(path, k, v); return nil })
			}
		}
		return nil
	default:
		return w.fail(path, damagedf("page %d: flags %#x where a branch or leaf belongs", p.id, p.flags))
	}
}

// bucket walks the bucket whose header is v.
func (w *walker) bucket(path []string, v []byte, depth int) error {
	if len(v) < bucketHeaderSize {
		return w.fail(path, damagedf("bucket %q: header cut short", path))
	}
	root := ne.Uint64(v)
	if root != 0 {
		return w.tree(path, root, nil, nil, depth)
	}
	if depth > maxDepth {
		return w.fail(path, damagedf("bucket %q nested deeper than %d", path, maxDepth))
	}
	p, err := inlinePage(v)
	if err != nil {
		return w.fail(path, fmt.Errorf("bucket %q: %w", path, err))
	}
	return w.node(path, p, nil, nil, depth)
}

// unreachable finds a page below the high-water mark that is neither in
// use nor free: bbolt never leaves one.
func (w *walker) unreachable() error {
	if w.free == nil {
		return nil
	}
	for id := uint64(2); id < w.pf.meta.hwm; id++ {
		if !w.reach.has(id) && !w.free.has(id) {
			return damagedf("page %d is neither in use nor free", id)
		}
	}
	return nil
}

func inRange(k, lo, hi []byte) bool {
	return (lo == nil || bytes.Compare(k, lo) >= 0) && (hi == nil || bytes.Compare(k, hi) < 0)
}
