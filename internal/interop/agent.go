package interop

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ModuleRoot walks up from the working directory to the directory holding
// go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// BuildAgent builds ./agent/cmd/camgate into dir and returns the binary's
// path. race adds -race (tests); the bench builds like `task build` does.
func BuildAgent(dir string, race bool) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("build agent: %w", err)
	}
	bin := filepath.Join(dir, "camgate")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	} else {
		args = append(args, "-trimpath", "-ldflags", "-s -w")
	}
	args = append(args, "./agent/cmd/camgate")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if !race {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build agent: go %v: %w\n%s", args, err, out)
	}
	return bin, nil
}

// AgentOptions describe one camgate process. Zero ports are picked free on
// 127.0.0.1. WebRTC, HLS, the API, playback and the uplink are off unless
// Sections turns them on.
type AgentOptions struct {
	Bin string // camgate binary (required)
	Dir string // config file, logs and (by default) dataDir live here (required)

	DataDir string // agent.dataDir; default Dir/data

	RTSPPort int // rtsp.address port; 0: a free one
	RTPPort  int // rtsp.rtpAddress port (even), rtcp is RTPPort+1; 0: a free pair

	LogLevel string // agent.logLevel; default debug

	// Users replaces auth.users when non-nil (each a map such as
	// {"user": "pub", "pass": "secret", "permissions": [{"action": "publish"}]}).
	Users []map[string]any
	// PathDefaults are merged over the defaults.
	PathDefaults map[string]any
	// Paths are merged over the default paths (demo, all_others).
	Paths map[string]map[string]any
	// Sections are merged into the top-level sections last, key by key:
	// e.g. {"webrtc": {"address": "127.0.0.1:18889"}}.
	Sections map[string]map[string]any
	// Env is added to the agent's environment, from which every CAMGATE_*
	// variable of the caller is removed: the agent reads those as config
	// overrides and the tests must not depend on the caller's shell.
	Env []string
}

// Agent is a running camgate.
type Agent struct {
	*Proc
	Opts       AgentOptions
	ConfigPath string
	RTSPAddr   string // 127.0.0.1:port
}

// URL is the agent's RTSP URL of path, with userinfo ("user:pass") when given.
func (a *Agent) URL(path, userinfo string) string {
	if userinfo != "" {
		userinfo += "@"
	}
	return "rtsp://" + userinfo + a.RTSPAddr + "/" + path
}

// WriteAgentConfig fills in free ports and writes o.Dir/camgate.yml.
func WriteAgentConfig(o *AgentOptions) (string, error) {
	var err error
	if o.RTSPPort == 0 {
		if o.RTSPPort, err = FreeTCPPort(); err != nil {
			return "", err
		}
	}
	if o.RTPPort == 0 {
		if o.RTPPort, err = FreeUDPPair(); err != nil {
			return "", err
		}
	}
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	if o.DataDir == "" {
		o.DataDir = filepath.Join(o.Dir, "data")
	}
	doc := map[string]map[string]any{
		"agent": {
			"id":        "cg-interop",
			"dataDir":   o.DataDir,
			"logLevel":  o.LogLevel,
			"logFormat": "console",
		},
		"rtsp": {
			"address":     "127.0.0.1:" + strconv.Itoa(o.RTSPPort),
			"rtpAddress":  "127.0.0.1:" + strconv.Itoa(o.RTPPort),
			"rtcpAddress": "127.0.0.1:" + strconv.Itoa(o.RTPPort+1),
		},
		"webrtc":   {"address": ""},
		"hls":      {"address": ""},
		"api":      {"address": ""},
		"playback": {"address": ""},
		"uplink":   {"broker": ""},
	}
	if o.Users != nil {
		doc["auth"] = map[string]any{"users": o.Users}
	}
	if len(o.PathDefaults) > 0 {
		doc["pathDefaults"] = o.PathDefaults
	}
	if len(o.Paths) > 0 {
		paths := map[string]any{}
		for k, v := range o.Paths {
			paths[k] = v
		}
		doc["paths"] = paths
	}
	for sec, kv := range o.Sections {
		if doc[sec] == nil {
			doc[sec] = map[string]any{}
		}
		for k, v := range kv {
			doc[sec][k] = v
		}
	}
	b, err := yaml.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("agent config: %w", err)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return "", fmt.Errorf("agent config: %w", err)
	}
	path := filepath.Join(o.Dir, "camgate.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", fmt.Errorf("agent config: %w", err)
	}
	return path, nil
}

// StartAgent writes the config (first start only: ports are kept), starts
// `camgate run -c FILE` and waits up to timeout for its RTSP port.
func StartAgent(o AgentOptions, timeout time.Duration) (*Agent, error) {
	path, err := WriteAgentConfig(&o)
	if err != nil {
		return nil, err
	}
	a := &Agent{Opts: o, ConfigPath: path, RTSPAddr: "127.0.0.1:" + strconv.Itoa(o.RTSPPort)}
	return a, a.start(timeout)
}

// Restart starts the agent again with the same config and ports after it
// exited (or was killed).
func (a *Agent) Restart(timeout time.Duration) error {
	if ok, _ := a.Exited(); !ok {
		return fmt.Errorf("restart agent: pid %d still running", a.PID())
	}
	return a.start(timeout)
}

func (a *Agent) start(timeout time.Duration) error {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAMGATE_") {
			env = append(env, kv)
		}
	}
	env = append(env, a.Opts.Env...)
	p, err := StartProcEnv(a.Opts.Dir, "camgate", env, a.Opts.Bin, "run", "-c", a.ConfigPath)
	if err != nil {
		return err
	}
	a.Proc = p
	if err := WaitTCP(a.RTSPAddr, timeout, p.Done()); err != nil {
		p.Kill()
		return fmt.Errorf("agent: %w; last output:\n%s", err, p.Tail(30))
	}
	return nil
}
