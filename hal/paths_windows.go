//go:build windows

package hal

import (
	"os"
	"path/filepath"
)

func systemDataDir() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "camgate")
}
