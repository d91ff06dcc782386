//go:build !linux

package hal

import "fmt"

// readThermalZones: Windows exposes temperatures only through WMI's
// MSAcpi_ThermalZoneTemperature, which needs administrator rights and is
// absent on most boards, so the figure is left out there.
func readThermalZones(string) ([]ThermalZone, error) {
	return nil, fmt.Errorf("read thermal zones: %w", ErrNotSupported)
}
