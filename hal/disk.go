package hal

import (
	"fmt"

	"github.com/shirou/gopsutil/v4/disk"
)

// DiskUsage gives the bytes free for the agent (not those only root may
// use) and the size of the file system holding dir, or its nearest
// existing parent.
func DiskUsage(dir string) (free, total uint64, err error) {
	du, err := disk.Usage(existingDir(dir))
	if err != nil {
		return 0, 0, fmt.Errorf("read disk usage: %w", err)
	}
	return du.Free, du.Total, nil
}
