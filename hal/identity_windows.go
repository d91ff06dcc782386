//go:build windows

package hal

import (
	"fmt"

	"golang.org/x/sys/windows/registry"
)

// machineID reads MachineGuid from the 64-bit registry view (a 32-bit view
// would see a different key under WOW64). root has no meaning here.
func machineID(string) (string, error) {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Cryptography`, registry.QUERY_VALUE|registry.WOW64_64KEY)
	if err != nil {
		return "", fmt.Errorf("open MachineGuid key: %w", err)
	}
	defer k.Close()
	v, _, err := k.GetStringValue("MachineGuid")
	if err != nil {
		return "", fmt.Errorf("read MachineGuid: %w", err)
	}
	if v == "" {
		return "", fmt.Errorf("read MachineGuid: %w", ErrNotSupported)
	}
	return v, nil
}
