//go:build !linux

package store

import "errors"

// platformCases: the fifo, permission and read-only cases are Linux's.
func platformCases() []damageCase { return nil }

func remountReadOnly(string) error { return errors.ErrUnsupported }
