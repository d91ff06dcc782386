package agent

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/camgate/camgate/agent/conf/mediamtx"
)

// cmdImportMediaMTX converts a MediaMTX configuration: the camgate one to
// stdout, what was left out to stderr. The result is loaded as run would
// load it before it is printed; a result that does not load is an error
// (and a bug of the importer).
func cmdImportMediaMTX(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] == "" || args[0][0] == '-' {
		fmt.Fprintln(stderr, "usage: camgate import-mediamtx FILE > camgate.yml")
		return 2
	}
	src, err := os.ReadFile(args[0])
	if err != nil {
		fmt.Fprintln(stderr, "camgate:", err)
		return 1
	}
	name := filepath.Base(args[0])
	res, err := mediamtx.Convert(src, name)
	if err != nil {
		fmt.Fprintln(stderr, "camgate: import-mediamtx:", err)
		return 1
	}
	tmp, err := os.CreateTemp("", "camgate-import-*.yml")
	if err != nil {
		fmt.Fprintln(stderr, "camgate:", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(res.YAML)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		fmt.Fprintln(stderr, "camgate:", werr)
		return 1
	}
	fmt.Fprint(stderr, res.Report(name))
	if _, err := loadConfig(tmp.Name(), nil); err != nil {
		fmt.Fprintf(stderr, "camgate: import-mediamtx: the converted configuration does not load: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(res.YAML)
	return 0
}
