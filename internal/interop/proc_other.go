//go:build !linux

package interop

import "os/exec"

// setProcAttr does nothing here: the interop suite and the bench run on Linux.
func setProcAttr(*exec.Cmd) {}
