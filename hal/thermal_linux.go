//go:build linux

package hal

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// readThermalZones reads root/sys/class/thermal/thermal_zone*/{type,temp}.
// gopsutil's sensors package mixes hwmon and thermal zones and takes no
// root per call, so this small reader is written here. A zone whose
// temperature cannot be read (some firmware returns EIO or ENODATA while
// the sensor sleeps) or is out of any physical range is skipped; no zone
// at all is ErrNotSupported, so the figure is omitted rather than zero.
func readThermalZones(root string) ([]ThermalZone, error) {
	dirs, err := filepath.Glob(filepath.Join(root, "sys", "class", "thermal", "thermal_zone*"))
	if err != nil {
		return nil, fmt.Errorf("list thermal zones: %w", err)
	}
	var zones []ThermalZone
	for _, d := range dirs {
		raw, err := os.ReadFile(filepath.Join(d, "temp"))
		if err != nil {
			continue
		}
		milli, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil {
			continue
		}
		c := float64(milli) / 1000
		if c < -100 || c > 200 {
			continue
		}
		typ, _ := os.ReadFile(filepath.Join(d, "type"))
		zones = append(zones, ThermalZone{
			Name:    filepath.Base(d),
			Type:    strings.TrimSpace(string(typ)),
			Celsius: c,
		})
	}
	if len(zones) == 0 {
		return nil, fmt.Errorf("read thermal zones: %w", ErrNotSupported)
	}
	// Glob sorts lexically (thermal_zone10 before thermal_zone2); sort by number.
	sort.Slice(zones, func(i, j int) bool { return zoneNumber(zones[i].Name) < zoneNumber(zones[j].Name) })
	return zones, nil
}

func zoneNumber(name string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(name, "thermal_zone"))
	return n
}
