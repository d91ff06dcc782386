package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/hal"
	clog "github.com/camgate/camgate/internal/log"
	"github.com/camgate/camgate/internal/redact"
)

const usage = `camgate: edge agent for camera gateways

usage:
  camgate [run] [-c FILE]          run the agent (embedded defaults without -c)
  camgate check-config [-c FILE]   validate and print the effective config, secrets redacted
  camgate version                  version, commit, build date, Go version, os/arch
  camgate service install|uninstall|start|stop|status [-c FILE]
  camgate fleet ls|status ID|cmd ID NAME [JSON]|watch [-broker URL]
`

// shutdownGrace bounds a graceful stop.
const shutdownGrace = 5 * time.Second

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case "version", "-v", "--version":
		fmt.Fprintln(stdout, versionString())
		return 0
	case "service":
		return runService(context.Background(), args, stdout)
	case "fleet":
		ctx, stop := signalContext()
		defer stop()
		return runFleet(ctx, args, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "camgate: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func configFlag(name string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("c", "", "config file (YAML); default: embedded defaults")
	fs.StringVar(file, "config", "", "same as -c")
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return *file, nil
}

func cmdCheckConfig(args []string, stdout, stderr io.Writer) int {
	file, err := configFlag("check-config", args, stderr)
	if err != nil {
		return 2
	}
	cfg, err := conf.Load(file, os.Environ())
	if err != nil {
		fmt.Fprintln(stderr, "camgate: config:", redact.Error(err))
		return 1
	}
	out, err := cfg.Marshal()
	if err != nil {
		fmt.Fprintln(stderr, "camgate:", err)
		return 1
	}
	_, _ = stdout.Write(out)
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	file, err := configFlag("run", args, stderr)
	if err != nil {
		return 2
	}
	asService := hal.IsService()
	if file == "" && asService {
		if _, err := os.Stat(hal.DefaultConfigFile()); err == nil {
			file = hal.DefaultConfigFile()
		}
	}
	cfg, err := conf.Load(file, os.Environ())
	if err != nil {
		startFailure(asService, stderr, "camgate: config: "+redact.Error(err))
		return 1
	}
	logFile := cfg.Agent.LogFile
	if logFile == "" {
		logFile = hal.DefaultLogFile(asService)
	}
	log, closer, err := clog.New(clog.Options{
		Level: cfg.Agent.LogLevel, Format: cfg.Agent.LogFormat, File: logFile,
		MaxSizeMB: cfg.Agent.LogMaxSizeMB, MaxBackups: cfg.Agent.LogMaxBackups, Stderr: stderr,
	})
	if err != nil {
		startFailure(asService, stderr, "camgate: "+err.Error())
		return 1
	}
	defer closer.Close()
	if file == "" {
		log.Info().Msg("no config file given: running on the embedded defaults")
	}
	if lim := cfg.Agent.GoMemLimit; lim > 0 {
		debug.SetMemoryLimit(int64(lim))
	}
	if g := cfg.Agent.GoGC; g > 0 {
		debug.SetGCPercent(g)
	}

	err = hal.RunService("camgate", func(ctx context.Context) error {
		a, err := New(cfg, Options{ConfigFile: file, AsService: asService}, log)
		if err != nil {
			return err
		}
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
		}
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case err := <-done:
			return err
		case <-t.C:
			return fmt.Errorf("shutdown did not finish within %s", shutdownGrace)
		}
	})
	switch {
	case err == nil:
		return 0
	case errors.Is(err, hal.ErrRestartRequested):
		log.Info().Msg("exiting for restart")
		return 3
	default:
		log.Error().Err(err).Msg("camgate failed")
		return 1
	}
}

// startFailure reports an error that happens before logging is set up. A
// service has no console: the message goes to the platform's event log too.
func startFailure(asService bool, stderr io.Writer, msg string) {
	fmt.Fprintln(stderr, msg)
	if !asService {
		return
	}
	if el, err := hal.OpenEventLog("camgate"); err == nil {
		_ = el.Error(msg)
		_ = el.Close()
	}
}
