package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	amp4 "github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// The segment files are what mediacommon's fmp4 writes: ftyp and moov (the
// init, mvhd with a 1 ms timescale), then moof+mdat pairs (the parts).
// This file reads that layout back without loading the media data, and
// writes the fields fmp4 leaves at zero: the movie's and the tracks'
// durations, so that players and the playback server know a segment's
// length from its header. What it expects of fmp4's output was checked
// against mediacommon v2.4.1; TestDurationFields fails if that changes.

// maxBox bounds a box read into memory (a moov or a moof): a corrupt size
// must not make the recorder allocate gigabytes.
const maxBox = 64 << 20

var errBadFile = errors.New("not a segment file")

type boxHeader struct {
	typ  string
	size int64 // whole box, header included
	hdr  int64 // header size, 8 or 16
}

func readBoxHeader(r io.ReaderAt, off int64) (boxHeader, error) {
	var b [16]byte
	if _, err := r.ReadAt(b[:8], off); err != nil {
		return boxHeader{}, err
	}
	h := boxHeader{typ: string(b[4:8]), size: int64(binary.BigEndian.Uint32(b[:4])), hdr: 8}
	if h.size == 1 {
		if _, err := r.ReadAt(b[8:16], off+8); err != nil {
			return boxHeader{}, err
		}
		h.size, h.hdr = int64(binary.BigEndian.Uint64(b[8:16])), 16
	}
	if h.size < h.hdr {
		return boxHeader{}, fmt.Errorf("%w: box %q of %d bytes at %d", errBadFile, h.typ, h.size, off)
	}
	return h, nil
}

// The duration field of a version 0 mvhd or mdhd box is at offset 24:
// header 8, version and flags 4, creation and modification time 4 each,
// timescale 4.
const (
	hdTimescale = 20
	hdDuration  = 24
)

// durations locates the duration fields of an init that fmp4 writes with
// zeros: the movie's (mvhd, 1 ms) and each track's (mdhd, the track's
// timescale; players such as Chromium take a stream's length from it).
type durations struct {
	movie  int64
	tracks []trackDuration
}

type trackDuration struct {
	off       int64
	timescale uint32
}

// marshalInit writes the init of a segment and locates its durations.
func marshalInit(tracks []*fmp4.InitTrack) ([]byte, durations, error) {
	init := fmp4.Init{Tracks: tracks}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, durations{}, fmt.Errorf("marshal init: %w", err)
	}
	b := buf.Bytes()
	d, err := findDurations(bytes.NewReader(b))
	if err != nil {
		return nil, durations{}, err
	}
	return b, d, nil
}

// findDurations reads the box tree of a file that starts with ftyp and
// moov, and checks that the fields are the 32-bit ones fmp4 writes.
func findDurations(r io.ReaderAt) (durations, error) {
	var d durations
	ftyp, err := readBoxHeader(r, 0)
	if err != nil || ftyp.typ != "ftyp" {
		return d, fmt.Errorf("%w: no ftyp", errBadFile)
	}
	moov, err := readBoxHeader(r, ftyp.size)
	if err != nil || moov.typ != "moov" || moov.size > maxBox {
		return d, fmt.Errorf("%w: no moov after ftyp", errBadFile)
	}
	field := func(box int64, h boxHeader) (int64, uint32, error) {
		var b [4]byte
		if _, err := r.ReadAt(b[:1], box+h.hdr); err != nil || b[0] != 0 {
			return 0, 0, fmt.Errorf("%w: %s is not version 0", errBadFile, h.typ)
		}
		if _, err := r.ReadAt(b[:], box+hdTimescale); err != nil {
			return 0, 0, err
		}
		return box + hdDuration, binary.BigEndian.Uint32(b[:]), nil
	}
	// children calls fn for each box inside the box at off.
	children := func(off int64, h boxHeader, fn func(int64, boxHeader) error) error {
		for at := off + h.hdr; at < off+h.size; {
			c, err := readBoxHeader(r, at)
			if err != nil || at+c.size > off+h.size {
				return fmt.Errorf("%w: box %q overruns %q", errBadFile, c.typ, h.typ)
			}
			if err := fn(at, c); err != nil {
				return err
			}
			at += c.size
		}
		return nil
	}
	err = children(ftyp.size, moov, func(at int64, h boxHeader) error {
		switch h.typ {
		case "mvhd":
			off, ts, err := field(at, h)
			if err != nil {
				return err
			}
			if ts != 1000 {
				return fmt.Errorf("%w: mvhd timescale is %d, not 1000", errBadFile, ts)
			}
			d.movie = off
		case "trak":
			return children(at, h, func(at int64, h boxHeader) error {
				if h.typ != "mdia" {
					return nil
				}
				return children(at, h, func(at int64, h boxHeader) error {
					if h.typ != "mdhd" {
						return nil
					}
					off, ts, err := field(at, h)
					if err == nil && ts > 0 {
						d.tracks = append(d.tracks, trackDuration{off, ts})
					}
					return err
				})
			})
		}
		return nil
	})
	if err != nil {
		return d, err
	}
	if d.movie == 0 {
		return d, fmt.Errorf("%w: moov without mvhd", errBadFile)
	}
	return d, nil
}

// write stores d, rounded down, in every field; a track whose timescale
// cannot hold d in 32 bits keeps 0 (unknown).
func (f durations) write(w io.WriterAt, d time.Duration) error {
	put := func(off int64, v int64) error {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(v))
		_, err := w.WriteAt(b[:], off)
		return err
	}
	if err := put(f.movie, min(d.Milliseconds(), 1<<32-1)); err != nil {
		return err
	}
	for _, t := range f.tracks {
		v := durationToTicks(d, t.timescale)
		if v >= 1<<32 {
			v = 0
		}
		if err := put(t.off, v); err != nil {
			return err
		}
	}
	return nil
}

// segmentHeader is what a segment's init says.
type segmentHeader struct {
	init     *fmp4.Init
	size     int64         // bytes of ftyp and moov: the first part's offset
	duration time.Duration // from mvhd; 0 for a segment never closed
	durs     durations
}

func readHeader(r io.ReaderAt) (*segmentHeader, error) {
	durs, err := findDurations(r)
	if err != nil {
		return nil, err
	}
	ftyp, _ := readBoxHeader(r, 0)
	moov, _ := readBoxHeader(r, ftyp.size)
	n := ftyp.size + moov.size
	if n > maxBox {
		return nil, fmt.Errorf("%w: init of %d bytes", errBadFile, n)
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read init: %w", err)
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadFile, err)
	}
	ms := binary.BigEndian.Uint32(b[durs.movie : durs.movie+4])
	return &segmentHeader{init: &init, size: n, duration: time.Duration(ms) * time.Millisecond, durs: durs}, nil
}

// partInfo locates one part (moof+mdat) and says what time it covers.
type partInfo struct {
	off, size int64
	tracks    []partTrackInfo
}

// partTrackInfo is one track of a part, in the track's timescale, relative
// to the segment's start.
type partTrackInfo struct {
	id    int
	start int64   // base media decode time
	end   int64   // start plus the samples' durations
	syncs []int64 // decode times of the sync samples
}

const sampleNonSync = 1 << 16

// scanParts calls fn for each complete part from off on, reading only the
// moof boxes. It returns the offset after the last complete part, where a
// crash may have left a partial one.
func scanParts(r io.ReaderAt, off int64, fn func(partInfo) bool) (int64, error) {
	for {
		moof, err := readBoxHeader(r, off)
		if err != nil || moof.typ != "moof" || moof.size > maxBox {
			return off, nil // end of file, or a part cut short
		}
		mdat, err := readBoxHeader(r, off+moof.size)
		if err != nil || mdat.typ != "mdat" {
			return off, nil
		}
		// The mdat must be complete: its last byte readable.
		var last [1]byte
		if _, err := r.ReadAt(last[:], off+moof.size+mdat.size-1); err != nil {
			return off, nil
		}
		b := make([]byte, moof.size)
		if _, err := r.ReadAt(b, off); err != nil {
			return off, nil
		}
		tracks, err := parseMoof(b)
		if err != nil {
			return off, nil
		}
		p := partInfo{off: off, size: moof.size + mdat.size, tracks: tracks}
		off += p.size
		if !fn(p) {
			return off, nil
		}
	}
}

// parseMoof reads the tracks' timing out of a moof box.
func parseMoof(b []byte) ([]partTrackInfo, error) {
	var out []partTrackInfo
	var cur *partTrackInfo
	var defFlags uint32
	_, err := amp4.ReadBoxStructure(bytes.NewReader(b), func(h *amp4.ReadHandle) (any, error) {
		switch h.BoxInfo.Type {
		case amp4.BoxTypeMoof():
			return h.Expand()
		case amp4.BoxTypeTraf():
			out = append(out, partTrackInfo{})
			cur = &out[len(out)-1]
			defFlags = 0
			return h.Expand()
		case amp4.BoxTypeTfhd():
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			tfhd := box.(*amp4.Tfhd)
			cur.id = int(tfhd.TrackID)
			if tfhd.GetFlags()&amp4.TfhdDefaultSampleFlagsPresent != 0 {
				defFlags = tfhd.DefaultSampleFlags
			}
		case amp4.BoxTypeTfdt():
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			tfdt := box.(*amp4.Tfdt)
			if tfdt.Version == 1 {
				cur.start = int64(tfdt.BaseMediaDecodeTimeV1)
			} else {
				cur.start = int64(tfdt.BaseMediaDecodeTimeV0)
			}
			cur.end = cur.start
		case amp4.BoxTypeTrun():
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			trun := box.(*amp4.Trun)
			flags := trun.GetFlags()
			for _, e := range trun.Entries {
				sf := defFlags
				if flags&0x400 != 0 {
					sf = e.SampleFlags
				}
				if sf&sampleNonSync == 0 {
					cur.syncs = append(cur.syncs, cur.end)
				}
				cur.end += int64(e.SampleDuration)
			}
		}
		return nil, nil
	})
	if err != nil {
		return nil, err
	}
	for _, t := range out {
		if t.id == 0 {
			return nil, fmt.Errorf("%w: traf without tfhd", errBadFile)
		}
	}
	return out, nil
}

// readPart loads one part with its media data.
func readPart(r io.ReaderAt, p partInfo) (*fmp4.Part, error) {
	b := make([]byte, p.size)
	if _, err := r.ReadAt(b, p.off); err != nil {
		return nil, fmt.Errorf("read part: %w", err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: part at %d: %v", errBadFile, p.off, err)
	}
	if len(parts) != 1 {
		return nil, fmt.Errorf("%w: %d parts at %d", errBadFile, len(parts), p.off)
	}
	return parts[0], nil
}

// ticksToDuration converts t units of a timescale, without overflow for
// any time a recording can span.
func ticksToDuration(t int64, timescale uint32) time.Duration {
	ts := int64(timescale)
	return time.Duration(t/ts)*time.Second + time.Duration(t%ts)*time.Second/time.Duration(ts)
}

// durationToTicks is the inverse of ticksToDuration, rounded down.
func durationToTicks(d time.Duration, timescale uint32) int64 {
	ts := int64(timescale)
	return int64(d/time.Second)*ts + int64(d%time.Second)*ts/int64(time.Second)
}

// timescaleOf finds a track's timescale in the init.
func timescaleOf(init *fmp4.Init, id int) uint32 {
	for _, t := range init.Tracks {
		if t.ID == id {
			return t.TimeScale
		}
	}
	return 0
}

// partsDuration is the end of the longest track over the parts scanned
// from a segment: its duration.
func partsEnd(init *fmp4.Init, p partInfo, cur time.Duration) time.Duration {
	for _, t := range p.tracks {
		if ts := timescaleOf(init, t.id); ts > 0 {
			cur = max(cur, ticksToDuration(t.end, ts))
		}
	}
	return cur
}
