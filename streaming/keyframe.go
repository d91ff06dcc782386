package streaming

import (
	"github.com/bluenviron/gortsplib/v4/pkg/format"
)

// videoCodec tells how to find keyframes in a track's RTP payloads.
type videoCodec uint8

const (
	codecOther videoCodec = iota
	codecH264
	codecH265
)

func codecOf(f format.Format) videoCodec {
	switch f.(type) {
	case *format.H264:
		return codecH264
	case *format.H265:
		return codecH265
	}
	return codecOther
}

// isKeyPayload reports whether an RTP payload carries (the start of) an IDR
// or a parameter set, i.e. belongs to the first access unit of a GOP.
func isKeyPayload(c videoCodec, p []byte) bool {
	switch c {
	case codecH264:
		return h264Key(p)
	case codecH265:
		return h265Key(p)
	}
	return false
}

func h264KeyNAL(t byte) bool { return t == 5 || t == 7 || t == 8 }

func h264Key(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; t {
	case 24: // STAP-A
		p = p[1:]
		for len(p) >= 3 {
			n := int(p[0])<<8 | int(p[1])
			if n == 0 || 2+n > len(p) {
				return false
			}
			if h264KeyNAL(p[2] & 0x1f) {
				return true
			}
			p = p[2+n:]
		}
		return false
	case 28: // FU-A: only the start fragment counts
		return len(p) >= 2 && p[1]&0x80 != 0 && h264KeyNAL(p[1]&0x1f)
	default:
		return h264KeyNAL(t)
	}
}

func h265KeyNAL(t byte) bool { return (t >= 16 && t <= 21) || (t >= 32 && t <= 34) }

func h265Key(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch t := (p[0] >> 1) & 0x3f; t {
	case 48: // aggregation packet
		p = p[2:]
		for len(p) >= 4 {
			n := int(p[0])<<8 | int(p[1])
			if n < 2 || 2+n > len(p) {
				return false
			}
			if h265KeyNAL((p[2] >> 1) & 0x3f) {
				return true
			}
			p = p[2+n:]
		}
		return false
	case 49: // fragmentation unit
		return len(p) >= 3 && p[2]&0x80 != 0 && h265KeyNAL(p[2]&0x3f)
	default:
		return h265KeyNAL(t)
	}
}
