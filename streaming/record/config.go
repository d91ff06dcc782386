package record

import (
	"errors"
	"fmt"
	"time"
)

// DefaultPattern is recordPath when none is set: MediaMTX's default, under
// the recorder's base directory (the agent's dataDir).
const DefaultPattern = "./recordings/%path/%Y-%m-%d_%H-%M-%S-%f"

// Bounds of the durations; a part shorter than minPart would make the
// per-part fsync the main cost of recording.
const (
	minPart    = 100 * time.Millisecond
	minSegment = time.Second
)

// PathConfig is how one path entry (a name, "~regexp" or all_others) is
// recorded. The zero value records nothing.
type PathConfig struct {
	// Record turns recording on.
	Record bool
	// Pattern is recordPath: where segments go, with %path and the time
	// of the segment's start (%Y %m %d %H %M %S, %f microseconds, %s Unix
	// seconds, all UTC); ".mp4" is appended. Relative patterns are under
	// the recorder's base directory. Default DefaultPattern.
	Pattern string
	// SegmentDuration is how long a file grows before the next one starts,
	// at the next video keyframe; default 10 min.
	SegmentDuration time.Duration
	// PartDuration is how much a crash can lose: each part is written and
	// synced as it completes; default 1 s.
	PartDuration time.Duration
	// DeleteAfter deletes segments that ended longer ago; 0 keeps them
	// whatever their age (the config file's default is 24 h).
	DeleteAfter time.Duration
	// MaxBytes bounds the size of all of the path's segments; 0 = no bound.
	MaxBytes uint64
	// MinFreeBytes is the free space kept on the volume; 0 = 5 % of it.
	MinFreeBytes uint64
}

func (c PathConfig) withDefaults() PathConfig {
	if c.Pattern == "" {
		c.Pattern = DefaultPattern
	}
	if c.SegmentDuration <= 0 {
		c.SegmentDuration = 10 * time.Minute
	}
	if c.PartDuration <= 0 {
		c.PartDuration = time.Second
	}
	return c
}

// Validate checks the settings; errors are *ConfigError.
func (c PathConfig) Validate() error {
	if c.Pattern != "" {
		if _, err := parsePattern(c.Pattern); err != nil {
			return &ConfigError{Key: "recordPath", Err: err}
		}
	}
	if c.SegmentDuration != 0 && c.SegmentDuration < minSegment {
		return &ConfigError{Key: "recordSegmentDuration", Err: fmt.Errorf("%s is below the minimum of %s", c.SegmentDuration, minSegment)}
	}
	if c.PartDuration != 0 && c.PartDuration < minPart {
		return &ConfigError{Key: "recordPartDuration", Err: fmt.Errorf("%s is below the minimum of %s", c.PartDuration, minPart)}
	}
	d := c.withDefaults()
	if d.PartDuration > d.SegmentDuration {
		return &ConfigError{Key: "recordPartDuration", Err: fmt.Errorf("%s is longer than recordSegmentDuration (%s)", d.PartDuration, d.SegmentDuration)}
	}
	if c.MaxBytes != 0 && c.MaxBytes < 1<<20 {
		return &ConfigError{Key: "recordMaxBytes", Err: errors.New("must be 0 (no bound) or at least 1MiB")}
	}
	return nil
}

// minFree is the free space to keep on a volume of total bytes.
func (c PathConfig) minFree(total uint64) uint64 {
	if c.MinFreeBytes > 0 {
		return c.MinFreeBytes
	}
	return total / 20
}
