package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/camgate/camgate/hal"
)

const serviceUsage = `usage: camgate service install|uninstall|start|stop|status [-c FILE] [-name NAME]

  install    register camgate with the service manager (Windows service with
             restart on failure, or a hardened systemd unit) to start at boot;
             runs "camgate run -c FILE". Without -c: the system config file
             (%s) when it exists, else the embedded defaults.
  uninstall  stop and remove the service
  start      start the service now
  stop       stop the service (graceful: bbolt is closed)
  status     print the service state; exit 0 when running, 3 when not

  Needs an elevated prompt (Windows) or root (Linux).
`

// runService runs `camgate service ...`; args are the arguments after
// "service". It returns the process exit code: 0 ok, 1 failure, 2 usage,
// 3 for status when the service is not running.
func runService(ctx context.Context, args []string, stdout io.Writer) int {
	usage := func() int {
		fmt.Fprintf(stdout, serviceUsage, hal.DefaultConfigFile())
		return 2
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		return usage()
	}
	verb := args[0]
	fs := flag.NewFlagSet("service "+verb, flag.ContinueOnError)
	fs.SetOutput(stdout)
	cfgFile := fs.String("c", "", "config `FILE` the service runs with (install only)")
	name := fs.String("name", "camgate", "service or unit `NAME`, for several agents on one box")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stdout, "camgate service %s: unexpected argument %q\n", verb, fs.Arg(0))
		return 2
	}
	if err := ctx.Err(); err != nil {
		return 1
	}

	fail := func(err error) int {
		fmt.Fprintf(stdout, "camgate service %s: %v\n", verb, err)
		switch {
		case errors.Is(err, hal.ErrServiceNotInstalled):
			fmt.Fprintf(stdout, "install it with: camgate service install -c FILE\n")
		case errors.Is(err, hal.ErrServiceExists):
			fmt.Fprintf(stdout, "remove it first with: camgate service uninstall\n")
		}
		return 1
	}

	switch verb {
	case "install":
		file, err := serviceConfigFile(*cfgFile)
		if err != nil {
			return fail(err)
		}
		if err := hal.InstallService(hal.ServiceConfig{Name: *name, ConfigFile: file}); err != nil {
			return fail(err)
		}
		if file == "" {
			fmt.Fprintf(stdout, "installed service %s (embedded default config); start it with: camgate service start\n", *name)
		} else {
			fmt.Fprintf(stdout, "installed service %s with config %s; start it with: camgate service start\n", *name, file)
		}
	case "uninstall":
		if err := hal.UninstallService(*name); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "removed service %s (data and config are kept)\n", *name)
	case "start":
		if err := hal.StartService(*name); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "started service %s\n", *name)
	case "stop":
		if err := hal.StopService(*name); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "stopped service %s\n", *name)
	case "status":
		st, err := hal.QueryService(*name)
		if err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "%s: %s\n", *name, st)
		if st != hal.ServiceRunning {
			return 3
		}
	default:
		fmt.Fprintf(stdout, "camgate service: unknown command %q\n", verb)
		return usage()
	}
	return 0
}

// serviceConfigFile picks and checks the config the service will run
// with: a broken file found now is better than a service that fails at
// every restart. The environment is left out of the check because the
// service does not run with the installer's environment.
func serviceConfigFile(file string) (string, error) {
	if file == "" {
		def := hal.DefaultConfigFile()
		if _, err := os.Stat(def); err != nil {
			return "", nil
		}
		file = def
	}
	if _, err := loadConfig(file, nil); err != nil {
		return "", fmt.Errorf("check config: %w", err)
	}
	return file, nil
}
