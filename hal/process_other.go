//go:build !unix && !windows

package hal

import "os/exec"

func command(line string, expand func(string) string) (*exec.Cmd, error) {
	if _, err := splitLine(line, expand); err != nil {
		return nil, err
	}
	return nil, ErrNotSupported
}

func (t *ProcessTree) start() error { return ErrNotSupported }
