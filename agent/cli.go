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

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/agent/update"
	"github.com/camgate/camgate/hal"
	clog "github.com/camgate/camgate/internal/log"
	"github.com/camgate/camgate/internal/mmsg"
	"github.com/camgate/camgate/internal/redact"
)

const usage = `camgate: edge agent for camera gateways

usage:
  camgate [run] [-c FILE]          run the agent (embedded defaults without -c)
  camgate check-config [-c FILE]   validate and print the effective config, secrets redacted
  camgate verify FILE [-sig FILE.minisig] [-P KEY] [-c FILE]
                                   check a release file's minisign signature against update.publicKeys
  camgate import-mediamtx FILE     convert a MediaMTX mediamtx.yml: camgate config to stdout,
                                   what was left out (and why) to stderr
  camgate version                  version, commit, build date, Go version, os/arch
  camgate service install|uninstall|start|stop|status [-c FILE]
  camgate fleet ls|status|cmd|desired|rollout|watch ...  [-broker URL]
                                   the fleet side over MQTT (camgate fleet -h)
`

// shutdownGrace bounds a graceful stop.
const shutdownGrace = 5 * time.Second

// Main runs the command line and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && isHelpFlag(args[0]) {
		// "camgate -h" is a question about camgate, not about run's flags.
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "check-config":
		return cmdCheckConfig(args, stdout, stderr)
	case "verify":
		return cmdVerify(args, stdout, stderr)
	case "import-mediamtx":
		return cmdImportMediaMTX(args, stdout, stderr)
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

func isHelpFlag(a string) bool {
	switch a {
	case "-h", "-help", "--help", "-?", "/?":
		return true
	}
	return false
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
	cfg, err := loadConfig(file, os.Environ())
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
	onTrial, trialService := update.TrialMode(os.Getenv)
	if onTrial {
		// The supervising agent is the service's process; this one is its child.
		asService = trialService
	}
	if file == "" && asService {
		if _, err := os.Stat(hal.DefaultConfigFile()); err == nil {
			file = hal.DefaultConfigFile()
		}
	}
	cfg, err := loadConfig(file, os.Environ())
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
	if !cfg.Agent.UDPGSO {
		mmsg.DisableGSO()
	}
	dataDir := cfg.Agent.DataDir
	if dataDir == "" {
		dataDir = hal.DefaultDataDir(asService)
	}
	runArgs := append([]string{"run"}, args...)
	var trial *update.TrialLink
	if onTrial {
		trial = update.NewTrialLink(os.Stdin, os.Stdout)
	} else if self, err := os.Executable(); err == nil {
		// The installed binary runs the committed update, if there is one.
		if bin := update.Resolve(dataDir, self, update.Redirected(os.Getenv), log); bin != "" {
			log.Info().Str("binary", bin).Msg("running the committed update")
			err := hal.Handover(bin, runArgs, update.RedirectEnv(os.Environ()))
			log.Error().Err(err).Msg("could not run the committed update: running this binary")
		}
	}

	opts := Options{ConfigFile: file, AsService: asService, Trial: trial}
	err = hal.RunService("camgate", func(ctx context.Context) error {
		for {
			err := runOnce(ctx, cfg, opts, dataDir, log)
			if !errors.Is(err, errUpdateTrial) {
				return err
			}
			if ctx.Err() != nil {
				return nil // stopped: the next start rolls the candidate back
			}
			out, err := update.RunTrial(ctx, update.TrialOptions{
				DataDir: dataDir, Args: runArgs, AsService: asService,
				Timeout: cfg.Update.TrialTimeout.D(), Running: Version, Log: log,
			})
			if err != nil {
				log.Error().Err(err).Msg("update trial")
			}
			if out.Committed {
				log.Info().Str("version", out.Run.Version).Msg("update committed: handing over")
				return hal.Handover(out.Run.Path, runArgs, update.RedirectEnv(os.Environ()))
			}
			if ctx.Err() != nil {
				return nil
			}
			// Rolled back: this version runs again and reports why.
		}
	})
	switch {
	case err == nil:
		if trial != nil && !trial.Committed() {
			return 1 // a candidate that was not committed
		}
		return 0
	case errors.Is(err, hal.ErrRestartRequested):
		log.Info().Msg("exiting for restart")
		return 3
	default:
		log.Error().Err(err).Msg("camgate failed")
		return 1
	}
}

// runOnce builds and runs one agent until ctx ends or it stops by itself
// (restart, update trial, failure). A store migrated by a rolled-back
// candidate to a schema this build does not know is put back from the
// snapshot taken before the trial.
func runOnce(ctx context.Context, cfg *conf.Config, opts Options, dataDir string, log zerolog.Logger) error {
	a, err := New(cfg, opts, log)
	if errors.Is(err, store.ErrNewerSchema) && opts.Trial == nil {
		if rerr := update.RestoreSnapshot(dataDir); rerr == nil {
			log.Warn().Msg("store restored from before the last update's trial (the candidate had migrated it)")
			a, err = New(cfg, opts, log)
		}
	}
	if err != nil {
		return err
	}
	if opts.Trial == nil {
		update.DropSnapshot(dataDir) // the store opened: no rollback needs it
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
