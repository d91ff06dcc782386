package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math/bits"
)

// This file reads bbolt's on-disk format with plain reads (ReadAt), never
// through a memory map, and checks every offset against the page and the
// file before using it. It exists because bbolt itself trusts its file: it
// maps the whole file and follows page ids without bounds checks, so a
// short file faults (SIGBUS kills the process) and a damaged page panics,
// and its own Tx.Check runs on the same map in a goroutine of its own,
// where neither a recover nor debug.SetPanicOnFault can help. Reading
// pages here is how Open decides whether bbolt may touch a file at all,
// and how a damaged file's readable records are saved.
//
// The layout was checked against go.etcd.io/bbolt v1.5.0
// (internal/common/page.go, meta.go, bucket.go; file format version 2).
// TestPageFileReadsWhatBoltWrote fails when a bbolt upgrade changes it.

// Layout constants of the format.
const (
	pageHeaderSize   = 16 // id u64, flags u16, count u16, overflow u32
	elemSize         = 16 // branch: pos u32, ksize u32, pgid u64; leaf: flags u32, pos u32, ksize u32, vsize u32
	bucketHeaderSize = 16 // root pgid u64, sequence u64; an inline page follows when root is 0
	metaSize         = 64 // magic, version, pageSize, flags, root (16), freelist, pgid, txid, checksum
	metaSumSize      = 56 // the checksum covers the meta up to itself

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagMeta     = 0x04
	flagFreelist = 0x10
	leafIsBucket = 0x01

	boltMagic   = 0xED0CDAED
	boltVersion = 2
	noFreelist  = ^uint64(0)

	minPageSize = 512
	maxPageSize = 1 << 20
	// maxPages bounds what a salvage of a short file believes its meta
	// about (page bitsets of 8 MiB at most).
	maxPages = 1 << 26
)

// bbolt writes its structures in the machine's byte order (little-endian
// on every camgate target) and reads them back the same way; so does this.
var ne = binary.NativeEndian

func damagedf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrDamaged}, args...)...)
}

// boltMeta is one meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64 // root bucket's page
	freelist uint64 // freelist page or noFreelist
	hwm      uint64 // high-water mark: pages below it are in use or free
	txid     uint64
}

// parseMeta reads a meta page (b starts at the page header) and validates
// it as bbolt does: magic, version and checksum.
func parseMeta(b []byte) (boltMeta, error) {
	if len(b) < pageHeaderSize+metaSize {
		return boltMeta{}, damagedf("meta page cut short")
	}
	m := b[pageHeaderSize:]
	if ne.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, damagedf("meta page: bad magic")
	}
	if v := ne.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, damagedf("meta page: format version %d", v)
	}
	h := fnv.New64a()
	h.Write(m[:metaSumSize])
	if h.Sum64() != ne.Uint64(m[metaSumSize:]) {
		return boltMeta{}, damagedf("meta page: bad checksum")
	}
	return boltMeta{
		pageSize: ne.Uint32(m[8:]),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		hwm:      ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, nil
}

// pageFile is a bbolt file read page by page.
type pageFile struct {
	r    *windowReader
	size int64
	psz  int64
	meta boltMeta // the meta bbolt would use: the valid one with the higher txid
	// metaErr is the other meta page's problem, nil when both are valid.
	// bbolt then opens from the valid one, which may be one transaction old.
	metaErr error
}

// openPageFile finds the page size and the current meta page, and checks
// that every page below the high-water mark lies inside the file: bbolt
// maps the file and would fault on a page past its end. A salvage of a
// short file (short set) reads the pages that are left instead.
func openPageFile(r io.ReaderAt, size int64, short bool) (*pageFile, error) {
	if size == 0 {
		return nil, damagedf("empty file")
	}
	var (
		metas [2]boltMeta
		errs  [2]error
	)
	metas[0], errs[0] = readMetaAt(r, size, 0)
	psz := int64(0)
	if errs[0] == nil {
		psz = int64(metas[0].pageSize)
	}
	// As bbolt does: without a valid first meta, look for the second one
	// at each page size it could have been written with.
	if psz == 0 {
		errs[1] = damagedf("second meta page not found")
		for s := int64(minPageSize); s <= maxPageSize && s < size; s <<= 1 {
			if m, err := readMetaAt(r, size, s); err == nil && int64(m.pageSize) == s {
				metas[1], errs[1], psz = m, nil, s
				break
			}
		}
		if psz == 0 {
			return nil, damagedf("no valid meta page (first: %v)", errs[0])
		}
	} else {
		metas[1], errs[1] = readMetaAt(r, size, psz)
	}
	if bits.OnesCount64(uint64(psz)) != 1 || psz < minPageSize || psz > maxPageSize {
		return nil, damagedf("page size %d", psz)
	}
	for i := range metas {
		if errs[i] == nil && int64(metas[i].pageSize) != psz {
			errs[i] = damagedf("meta page %d: page size %d, the other says %d", i, metas[i].pageSize, psz)
		}
	}
	cur, other := 0, 1
	if errs[0] != nil || (errs[1] == nil && metas[1].txid > metas[0].txid) {
		cur, other = 1, 0
	}
	if errs[cur] != nil {
		return nil, damagedf("no valid meta page")
	}
	pf := &pageFile{r: &windowReader{r: r, size: size}, size: size, psz: psz, meta: metas[cur]}
	if errs[other] != nil {
		pf.metaErr = fmt.Errorf("meta page %d: %w", other, errs[other])
	}
	m := pf.meta
	switch {
	case m.hwm < 4 || (m.hwm > uint64(size/psz) && !short):
		return nil, damagedf("high-water mark %d pages of %d bytes, file has %d bytes", m.hwm, psz, size)
	case m.hwm > maxPages:
		return nil, damagedf("high-water mark %d pages", m.hwm)
	case m.root < 2 || m.root >= m.hwm:
		return nil, damagedf("root page %d outside 2..%d", m.root, m.hwm-1)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.hwm):
		return nil, damagedf("freelist page %d outside 2..%d", m.freelist, m.hwm-1)
	}
	return pf, nil
}

func readMetaAt(r io.ReaderAt, size, off int64) (boltMeta, error) {
	b := make([]byte, pageHeaderSize+metaSize)
	if off+int64(len(b)) > size {
		return boltMeta{}, damagedf("meta page at %d past the end of the file", off)
	}
	if _, err := r.ReadAt(b, off); err != nil {
		return boltMeta{}, fmt.Errorf("read meta page at %d: %w", off, err)
	}
	if f := ne.Uint16(b[8:]); f != flagMeta {
		return boltMeta{}, damagedf("meta page at %d: flags %#x", off, f)
	}
	return parseMeta(b)
}

// readWindow is how much windowReader reads at once: trees written by
// bbolt are mostly laid out in file order, so one read serves many pages.
const readWindow = 256 << 10

// windowReader serves reads from the last window of the file it read.
type windowReader struct {
	r    io.ReaderAt
	size int64
	win  []byte
	off  int64
}

func (w *windowReader) ReadAt(b []byte, off int64) (int, error) {
	end := off + int64(len(b))
	if off < 0 || end > w.size {
		return 0, io.ErrUnexpectedEOF
	}
	if len(b) > readWindow/2 {
		return w.r.ReadAt(b, off)
	}
	if off < w.off || end > w.off+int64(len(w.win)) {
		if w.win == nil {
			w.win = make([]byte, readWindow)
		}
		w.off = off &^ (readWindow/2 - 1)
		n := min(int64(readWindow), w.size-w.off)
		w.win = w.win[:cap(w.win)][:n]
		if _, err := w.r.ReadAt(w.win, w.off); err != nil {
			w.win = w.win[:0]
			return 0, err
		}
	}
	return copy(b, w.win[off-w.off:]), nil
}

// page is one page read from the file, overflow pages included, or an
// inline page inside a bucket value.
type page struct {
	id       uint64
	flags    uint16
	count    int
	overflow uint32
	buf      []byte // the whole page, header included
}

// readPage reads page id with its overflow. The id, the overflow and the
// header's own id must agree with the file and the meta.
func (pf *pageFile) readPage(id uint64) (page, error) {
	return pf.readPageBelow(id, pf.meta.hwm)
}

// readPageBelow reads page id, which with its overflow must lie below hwm.
func (pf *pageFile) readPageBelow(id, hwm uint64) (page, error) {
	if id < 2 || id >= hwm {
		return page{}, damagedf("page %d outside 2..%d", id, hwm-1)
	}
	// One read for the page; a second for its overflow, if any.
	buf := make([]byte, pf.psz)
	if _, err := pf.r.ReadAt(buf, int64(id)*pf.psz); err != nil {
		return page{}, fmt.Errorf("read page %d: %w", id, err)
	}
	p := page{id: ne.Uint64(buf), flags: ne.Uint16(buf[8:]), count: int(ne.Uint16(buf[10:])), overflow: ne.Uint32(buf[12:]), buf: buf}
	if p.id != id {
		return page{}, damagedf("page %d says it is page %d", id, p.id)
	}
	if uint64(p.overflow) >= hwm-id {
		return page{}, damagedf("page %d: overflow %d past the high-water mark", id, p.overflow)
	}
	if p.overflow > 0 {
		p.buf = make([]byte, (int64(p.overflow)+1)*pf.psz)
		copy(p.buf, buf)
		if _, err := pf.r.ReadAt(p.buf[pf.psz:], (int64(id)+1)*pf.psz); err != nil {
			return page{}, fmt.Errorf("read page %d: %w", id, err)
		}
	}
	return p, nil
}

// inlinePage parses the page stored inside a bucket value whose root is 0.
func inlinePage(v []byte) (page, error) {
	b := v[bucketHeaderSize:]
	if len(b) < pageHeaderSize {
		return page{}, damagedf("inline bucket cut short")
	}
	p := page{flags: ne.Uint16(b[8:]), count: int(ne.Uint16(b[10:])), buf: b}
	if p.flags != flagLeaf {
		return page{}, damagedf("inline bucket: flags %#x", p.flags)
	}
	return p, nil
}

// elem returns element i's fixed part after checking the element array
// fits the page.
func (p page) elem(i int) ([]byte, int, error) {
	off := pageHeaderSize + i*elemSize
	if i < 0 || i >= p.count || off+elemSize > len(p.buf) {
		return nil, 0, damagedf("page %d: element %d of %d outside the page", p.id, i, p.count)
	}
	return p.buf[off : off+elemSize], off, nil
}

// slice returns buf[off+pos : off+pos+n] when it lies in the page.
func (p page) slice(off int, pos, n uint32) ([]byte, bool) {
	start := uint64(off) + uint64(pos)
	end := start + uint64(n)
	if end > uint64(len(p.buf)) {
		return nil, false
	}
	return p.buf[start:end], true
}

// branch returns element i of a branch page: its key and child page.
func (p page) branch(i int) (key []byte, child uint64, err error) {
	e, off, err := p.elem(i)
	if err != nil {
		return nil, 0, err
	}
	key, ok := p.slice(off, ne.Uint32(e[0:]), ne.Uint32(e[4:]))
	if !ok {
		return nil, 0, damagedf("page %d: key %d outside the page", p.id, i)
	}
	return key, ne.Uint64(e[8:]), nil
}

// leaf returns element i of a leaf page.
func (p page) leaf(i int) (key, value []byte, isBucket bool, err error) {
	e, off, err := p.elem(i)
	if err != nil {
		return nil, nil, false, err
	}
	flags, pos, ks, vs := ne.Uint32(e[0:]), ne.Uint32(e[4:]), ne.Uint32(e[8:]), ne.Uint32(e[12:])
	if flags&^leafIsBucket != 0 {
		return nil, nil, false, damagedf("page %d: element %d flags %#x", p.id, i, flags)
	}
	kv, ok := p.slice(off, pos, ks+vs)
	if !ok || uint64(ks)+uint64(vs) > uint64(len(p.buf)) {
		return nil, nil, false, damagedf("page %d: element %d outside the page", p.id, i)
	}
	return kv[:ks], kv[ks:], flags&leafIsBucket != 0, nil
}

// freelist reads the ids on a freelist page.
func (p page) freelist() ([]uint64, error) {
	if p.flags != flagFreelist {
		return nil, damagedf("freelist page %d: flags %#x", p.id, p.flags)
	}
	data := p.buf[pageHeaderSize:]
	n := uint64(p.count)
	if p.count == 0xFFFF { // the real count is the first id slot
		if len(data) < 8 {
			return nil, damagedf("freelist page %d cut short", p.id)
		}
		n, data = ne.Uint64(data), data[8:]
	}
	if n > uint64(len(data)/8) {
		return nil, damagedf("freelist page %d: %d ids do not fit", p.id, n)
	}
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = ne.Uint64(data[8*i:])
	}
	return ids, nil
}

// bitset marks page ids below the high-water mark.
type bitset []uint64

func newBitset(n uint64) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) has(i uint64) bool { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) set(i uint64)      { b[i/64] |= 1 << (i % 64) }
