//go:build windows

package hal

import (
	"os"
	"path/filepath"
)

// programData is %ProgramData%\camgate. Services run as LocalSystem with the
// machine environment, where ProgramData is always set; the fallback covers
// a stripped environment.
func programData() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "camgate")
}

func systemDataDir() string    { return programData() }
func systemConfigFile() string { return filepath.Join(programData(), "camgate.yml") }
func systemLogFile() string    { return filepath.Join(programData(), "logs", "camgate.log") }
