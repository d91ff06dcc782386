//go:build !unix && !windows

package store

import (
	"os"
	"time"
)

// lockFile does nothing where camgate has no lock of bbolt's kind; bbolt's
// own open still fails on such systems.
func lockFile(*os.File, time.Duration) error { return nil }

func unlockFile(*os.File) error { return nil }
