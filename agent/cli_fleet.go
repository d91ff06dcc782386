package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
)

const fleetUsage = `usage: camgate fleet [flags] COMMAND ...

  ls                        agents from their retained status: state, version, labels
                            (-l SELECTOR or --all or IDS to choose; -listen D adds the age of
                            the last health seen in D)
  status ID                 the agent's retained status (exit 1 if offline)
  cmd ID NAME [JSON]        send a command (JSON = its args) and print the reply (exit 1 if not ok)
  cmd -l SELECTOR|--all|ID,ID,... NAME [JSON]
                            send it to many agents under one command id: a progress bar on a
                            terminal, then a table (ok, the error code, or no reply within
                            -timeout); --json for one object per agent; exit 1 when any agent
                            did not answer ok
  desired get ID|-l SELECTOR|--all
                            desired against reported version per agent (one ID: both documents)
  desired set ID|-l SELECTOR|--all FILE
                            write FILE (YAML or JSON: paths, labels, config) as each agent's
                            desired state, its version bumped; -wait D waits for the reports
                            (exit 1 if some did not converge)
  desired diff ID|-l SELECTOR|--all FILE
                            what set would change, per agent (exit 1 when something would)
  rollout -l SELECTOR|--all|ID,ID,... -url URL -sha256 HEX -sig FILE [-version V]
          [-canary N|P%] [-growth F] [-max-wave N] [-max-failures N] [-wave-timeout D] [-id ID]
                            agent.update in waves: a canary wave, then each wave -growth times
                            the last; each waits for update.committed / rolled_back / failed
                            (or the new version in the status); halts by itself when more
                            than -max-failures agents failed (exit 1). Offline agents are
                            left out unless -include-offline. Its progress is retained on
                            the broker (P/all/rollout/ID): resume it after a kill.
  rollout resume ID [-max-failures N] [-force]
  rollout status [ID]       one rollout's table, or every rollout
  watch [ID]                print status, health and events as they come (all agents by
                            default); -share GROUP splits them among the watchers of GROUP

Selectors: key=value, key!=value, key, !key, joined by commas (all must hold), matched
against the labels of the agents' retained status (agent.labels and desired labels).

The broker, credentials, TLS files and topic prefix come from the uplink
section of -c FILE (embedded defaults and CAMGATE_UPLINK_* otherwise);
flags override them. Flags may come before or after the command.

flags:
`

// fleetFlags are the flags of every fleet command.
type fleetFlags struct {
	fs                                                 *flag.FlagSet
	file, broker, user, pass, prefix, ca, cert, key    *string
	timeout, listen, wait, waveTimeout                 *time.Duration
	selector, share, url, sha256, sig, version, canary *string
	id                                                 *string
	all, jsonOut, force, includeOffline                *bool
	growth                                             *float64
	maxFailures, maxWave                               *int
}

func newFleetFlags(stderr io.Writer) *fleetFlags {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, fleetUsage); fs.PrintDefaults() }
	return &fleetFlags{
		fs:             fs,
		file:           fs.String("c", "", "config file to take the uplink settings from"),
		broker:         fs.String("broker", "", "broker URL (tcp://, ssl://, ws://, wss://)"),
		user:           fs.String("user", "", "broker user name"),
		pass:           fs.String("pass", "", "broker password"),
		prefix:         fs.String("prefix", "", "topic prefix"),
		ca:             fs.String("ca", "", "TLS CA file (PEM)"),
		cert:           fs.String("cert", "", "TLS client certificate (PEM)"),
		key:            fs.String("key", "", "TLS client key (PEM)"),
		timeout:        fs.Duration("timeout", 10*time.Second, "how long cmd waits for replies"),
		listen:         fs.Duration("listen", 0, "ls: also listen this long for health"),
		wait:           fs.Duration("wait", 0, "desired set: wait this long for the agents' reports"),
		selector:       fs.String("l", "", "choose agents by label: site=plant-3,line=2"),
		all:            fs.Bool("all", false, "choose every agent with a retained status"),
		jsonOut:        fs.Bool("json", false, "machine-readable output (ls, cmd, desired get)"),
		share:          fs.String("share", "", "watch: shared-subscription group"),
		url:            fs.String("url", "", "rollout: URL of the release file"),
		sha256:         fs.String("sha256", "", "rollout: SHA-256 of the file, hex"),
		sig:            fs.String("sig", "", "rollout: the minisign signature: a .minisig file or its text"),
		version:        fs.String("version", "", "rollout: the version the file holds"),
		canary:         fs.String("canary", "1", "rollout: size of the first wave: a count or a percentage (1%)"),
		growth:         fs.Float64("growth", 2, "rollout: each wave is this many times the previous one"),
		maxWave:        fs.Int("max-wave", 0, "rollout: largest wave (0: no cap)"),
		maxFailures:    fs.Int("max-failures", -1, "rollout: failed agents tolerated; one more halts it (default 0; resume: keep)"),
		waveTimeout:    fs.Duration("wave-timeout", 10*time.Minute, "rollout: time a wave's agents have for their update"),
		id:             fs.String("id", "", "rollout: id of a new rollout (default r-<time>-<random>)"),
		force:          fs.Bool("force", false, "rollout resume: take it over although its owner wrote recently"),
		includeOffline: fs.Bool("include-offline", false, "rollout: keep agents whose status is offline"),
	}
}

// parse parses flags anywhere among the arguments and returns the
// positional ones.
func (f *fleetFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			return nil, err
		}
		if f.fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
}

// target is the selection given by -l, --all or an ids argument ("" for
// none).
func (f *fleetFlags) target(ids string) (fleet.Target, error) {
	var t fleet.Target
	sel, err := fleet.ParseSelector(*f.selector)
	if err != nil {
		return t, err
	}
	t.Selector, t.All = sel, *f.all
	if ids != "" {
		for id := range strings.SplitSeq(ids, ",") {
			if id = strings.TrimSpace(id); id != "" {
				t.IDs = append(t.IDs, id)
			}
		}
	}
	return t, t.Validate()
}

// grouped tells whether agents were chosen by -l or --all (the ids, if
// any, are then not among the positional arguments).
func (f *fleetFlags) grouped() bool { return *f.all || *f.selector != "" }

// runFleet handles "camgate fleet ...": the fleet side in miniature.
func runFleet(ctx context.Context, args []string, stdout io.Writer) int {
	return fleetMain(ctx, args, stdout, os.Stderr)
}

func fleetMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	f := newFleetFlags(stderr)
	rest, err := f.parse(args)
	if err != nil {
		return 2
	}
	if len(rest) == 0 {
		f.fs.Usage()
		return 2
	}
	sub, rest := rest[0], rest[1:]
	usage := func(msg string) int {
		if msg != "" {
			fmt.Fprintln(stderr, "camgate fleet:", msg)
		}
		f.fs.Usage()
		return 2
	}
	// Check the arguments before connecting.
	switch sub {
	case "ls":
	case "status":
		if len(rest) != 1 {
			return usage("")
		}
	case "cmd":
		n := len(rest)
		if !f.grouped() {
			n--
		}
		if n < 1 || n > 2 {
			return usage("")
		}
		if n == 2 && !json.Valid([]byte(rest[len(rest)-1])) {
			fmt.Fprintln(stderr, "camgate fleet: args are not valid JSON")
			return 2
		}
	case "watch":
		if len(rest) > 1 {
			return usage("")
		}
	case "desired":
		if len(rest) == 0 {
			return usage("")
		}
		want := 1 // get: ID, or nothing with -l/--all
		switch rest[0] {
		case "get":
		case "set", "diff":
			want = 2
		default:
			return usage(fmt.Sprintf("unknown desired command %q", rest[0]))
		}
		if f.grouped() {
			want--
		}
		if len(rest)-1 != want {
			return usage("")
		}
	case "rollout":
		switch {
		case len(rest) > 0 && (rest[0] == "resume" || rest[0] == "status"):
		case len(rest) > 1 || (len(rest) == 1) == f.grouped():
			return usage("choose the agents of a rollout with ids, -l SELECTOR or --all")
		}
	default:
		return usage(fmt.Sprintf("unknown command %q", sub))
	}

	cfg, err := conf.Load(*f.file, os.Environ())
	if err != nil {
		fmt.Fprintln(stderr, "camgate fleet: config:", redact.Error(err))
		return 1
	}
	u := cfg.Uplink
	opts := fleet.Options{
		Broker: pick(*f.broker, string(u.Broker)), Username: pick(*f.user, u.Username), Password: pick(*f.pass, string(u.Password)),
		CAFile: pick(*f.ca, u.TLS.CA), CertFile: pick(*f.cert, u.TLS.Cert), KeyFile: pick(*f.key, u.TLS.Key),
		TopicPrefix: pick(*f.prefix, u.TopicPrefix), ShareGroup: *f.share,
	}
	if opts.Broker == "" {
		fmt.Fprintln(stderr, "camgate fleet: no broker (set -broker or uplink.broker)")
		return 2
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := fleet.Dial(dctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "camgate fleet:", redact.Error(err))
		return 1
	}
	defer c.Close()
	cl := &fleetCLI{f: f, c: c, stdout: stdout, stderr: stderr, terminal: isTerminal(stderr)}

	switch sub {
	case "ls":
		return cl.ls(ctx, strings.Join(rest, ","))
	case "status":
		st, err := c.Status(ctx, rest[0])
		if err != nil {
			return cl.fail(err)
		}
		printJSON(stdout, st)
		if st.State != uplink.StateOnline {
			return 1
		}
		return 0
	case "cmd":
		return cl.cmd(ctx, rest)
	case "desired":
		return cl.desired(ctx, rest[0], rest[1:])
	case "rollout":
		return cl.rollout(ctx, rest)
	default: // watch
		id := "+"
		if len(rest) == 1 {
			id = rest[0]
		}
		err := c.Watch(ctx, id, func(m fleet.Msg) error {
			_, err := fmt.Fprintf(stdout, "%s %s %s %s\n", time.Now().UTC().Format(time.RFC3339), m.AgentID, m.Kind, bytes.TrimSpace(m.Payload))
			return err
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			return cl.fail(err)
		}
		return 0
	}
}

// fleetCLI runs one fleet command.
type fleetCLI struct {
	f        *fleetFlags
	c        *fleet.Client
	stdout   io.Writer
	stderr   io.Writer
	terminal bool // stderr is a terminal: progress bars and live tables
}

func (cl *fleetCLI) fail(err error) int {
	fmt.Fprintln(cl.stderr, "camgate fleet:", err)
	return 1
}

// choose takes a snapshot and returns the agents the flags and ids pick.
func (cl *fleetCLI) choose(ctx context.Context, ids string, state bool) ([]fleet.AgentState, error) {
	t, err := cl.f.target(ids)
	if err != nil {
		return nil, err
	}
	agents, err := cl.c.Snapshot(ctx, fleet.SnapshotOptions{State: state})
	if err != nil {
		return nil, err
	}
	return t.Select(agents), nil
}

func (cl *fleetCLI) ls(ctx context.Context, ids string) int {
	agents, err := cl.c.Snapshot(ctx, fleet.SnapshotOptions{Listen: *cl.f.listen})
	if err != nil {
		return cl.fail(err)
	}
	if ids != "" || cl.f.grouped() {
		t, err := cl.f.target(ids)
		if err != nil {
			return cl.fail(err)
		}
		agents = t.Select(agents)
	} else {
		agents = fleet.Target{All: true}.Select(agents)
	}
	if *cl.f.jsonOut {
		printJSON(cl.stdout, agents)
		return 0
	}
	tw := tabwriter.NewWriter(cl.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tREASON\tVERSION\tSINCE\tLABELS\tLAST HEALTH")
	now := time.Now()
	for _, a := range agents {
		since, health := "-", "-"
		switch {
		case a.Status.State == uplink.StateOnline && a.Status.StartedAt != nil:
			since = now.Sub(*a.Status.StartedAt).Round(time.Second).String()
		case a.Status.TS != nil:
			since = now.Sub(*a.Status.TS).Round(time.Second).String()
		}
		if !a.LastHealth.IsZero() {
			health = now.Sub(a.LastHealth).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, orDash(a.Status.State), orDash(a.Status.Reason), orDash(a.Status.Version), since, orDash(labelString(a.Status.Labels)), health)
	}
	_ = tw.Flush()
	return 0
}

func labelString(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	var sel []string
	for k, v := range l {
		sel = append(sel, k+"="+v)
	}
	sortStrings(sel)
	return strings.Join(sel, ",")
}

func (cl *fleetCLI) cmd(ctx context.Context, rest []string) int {
	ids := ""
	if !cl.f.grouped() {
		ids, rest = rest[0], rest[1:]
	}
	name := rest[0]
	var args json.RawMessage
	if len(rest) == 2 {
		args = json.RawMessage(rest[1])
	}
	if !cl.f.grouped() && !strings.Contains(ids, ",") {
		// One agent: its reply as it came.
		if err := uplink.ValidateAgentID(ids); err != nil {
			return cl.fail(err)
		}
		cctx, cancel := context.WithTimeout(ctx, *cl.f.timeout)
		defer cancel()
		r, err := cl.c.Command(cctx, ids, name, args)
		if err != nil {
			return cl.fail(err)
		}
		printJSON(cl.stdout, r)
		if !r.OK {
			return 1
		}
		return 0
	}
	agents, err := cl.choose(ctx, ids, false)
	if err != nil {
		return cl.fail(err)
	}
	online := map[string]bool{}
	targets := make([]string, len(agents))
	for i, a := range agents {
		targets[i] = a.ID
		online[a.ID] = a.Online()
	}
	bar := cl.progress("replies", len(targets))
	results, err := cl.c.CommandMany(ctx, targets, name, args, fleet.ManyOptions{
		Timeout: *cl.f.timeout, Progress: bar.set, Online: func(id string) bool { return online[id] },
	})
	bar.done()
	if err != nil {
		return cl.fail(err)
	}
	failed := 0
	for _, r := range results {
		if !r.OK() {
			failed++
		}
	}
	if *cl.f.jsonOut {
		type row struct {
			ID      string        `json:"id"`
			OK      bool          `json:"ok"`
			Outcome string        `json:"outcome"`
			Reply   *uplink.Reply `json:"reply,omitempty"`
		}
		rows := make([]row, len(results))
		for i, r := range results {
			rows[i] = row{ID: r.ID, OK: r.OK(), Outcome: r.Outcome(), Reply: r.Reply}
		}
		printJSON(cl.stdout, rows)
	} else {
		tw := tabwriter.NewWriter(cl.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tRESULT\tDETAIL")
		counts := map[string]int{}
		for _, r := range results {
			detail := ""
			switch {
			case r.Err != nil:
				detail = r.Err.Error()
			case r.Reply != nil && r.Reply.Error != nil:
				detail = r.Reply.Error.Message
			}
			counts[r.Outcome()]++
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.ID, r.Outcome(), oneLine(detail))
		}
		_ = tw.Flush()
		fmt.Fprintf(cl.stdout, "%d agents: %s\n", len(results), countString(counts))
	}
	if failed > 0 || len(results) == 0 {
		return 1
	}
	return 0
}

func (cl *fleetCLI) desired(ctx context.Context, op string, rest []string) int {
	ids, file := "", ""
	if !cl.f.grouped() {
		ids, rest = rest[0], rest[1:]
	}
	if op != "get" {
		file = rest[0]
	}
	var doc fleet.Doc
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return cl.fail(err)
		}
		if doc, err = fleet.ParseDesiredFile(b); err != nil {
			return cl.fail(fmt.Errorf("%s: %w", file, err))
		}
	}
	agents, err := cl.choose(ctx, ids, true)
	if err != nil {
		return cl.fail(err)
	}
	switch op {
	case "get":
		if !cl.f.grouped() && !strings.Contains(ids, ",") {
			a := agents[0]
			printJSON(cl.stdout, map[string]any{"id": a.ID, "state": fleet.ConvergenceOf(a).State(), "desired": a.Desired, "reported": a.Reported})
			return 0
		}
		cl.convergence(agents, nil)
		return 0
	case "diff":
		changed := 0
		for _, a := range agents {
			ch := fleet.Diff(fleet.DocOf(a.Desired), doc)
			if len(ch) == 0 {
				fmt.Fprintf(cl.stdout, "%s: no change\n", a.ID)
				continue
			}
			changed++
			fmt.Fprintf(cl.stdout, "%s: version %d -> %d\n", a.ID, desiredVersion(a), fleet.NextVersion(a))
			for _, c := range ch {
				fmt.Fprintf(cl.stdout, "  %s\n", c)
			}
		}
		fmt.Fprintf(cl.stdout, "%d of %d agents would change\n", changed, len(agents))
		if changed > 0 {
			return 1
		}
		return 0
	}
	// set
	want := make(map[string]uint64, len(agents))
	bar := cl.progress("written", len(agents))
	for i, a := range agents {
		v := fleet.NextVersion(a)
		if err := cl.c.PutDesired(ctx, a.ID, v, doc); err != nil {
			bar.done()
			return cl.fail(err)
		}
		want[a.ID] = v
		bar.set(i+1, len(agents))
	}
	bar.done()
	fmt.Fprintf(cl.stdout, "desired state written for %d agents\n", len(agents))
	if *cl.f.wait <= 0 {
		return 0
	}
	wctx, cancel := context.WithTimeout(ctx, *cl.f.wait)
	defer cancel()
	bar = cl.progress("reported", len(want))
	got, werr := cl.c.WaitReported(wctx, want, bar.set)
	bar.done()
	for i := range agents {
		a := &agents[i]
		a.Desired = &uplink.Desired{Version: want[a.ID]}
		if r, ok := got[a.ID]; ok {
			a.Reported = &r
		}
	}
	if n := cl.convergence(agents, want); n > 0 || werr != nil {
		return 1
	}
	return 0
}

func desiredVersion(a fleet.AgentState) uint64 {
	if a.Desired == nil {
		return 0
	}
	return a.Desired.Version
}

// convergence prints the desired against reported table and returns how
// many agents have not converged.
func (cl *fleetCLI) convergence(agents []fleet.AgentState, _ map[string]uint64) int {
	rows := make([]fleet.Convergence, len(agents))
	counts := map[string]int{}
	notConverged := 0
	for i, a := range agents {
		rows[i] = fleet.ConvergenceOf(a)
		counts[rows[i].State()]++
		if !rows[i].Converged() {
			notConverged++
		}
	}
	if *cl.f.jsonOut {
		type row struct {
			fleet.Convergence
			State string `json:"state"`
		}
		out := make([]row, len(rows))
		for i, r := range rows {
			out[i] = row{r, r.State()}
		}
		printJSON(cl.stdout, out)
		return notConverged
	}
	tw := tabwriter.NewWriter(cl.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tDESIRED\tREPORTED\tERRORS")
	for _, r := range rows {
		var errs []string
		for _, e := range r.Errors {
			errs = append(errs, e.Key+": "+string(e.Code))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.State(), docVersion(r.Desired), docVersion(r.Reported), orDash(strings.Join(errs, "; ")))
	}
	_ = tw.Flush()
	fmt.Fprintf(cl.stdout, "%d agents: %s\n", len(rows), countString(counts))
	return notConverged
}

func docVersion(v uint64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprint(v)
}

func countString(counts map[string]int) string {
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	sortStrings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func pick(flagValue, configValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return configValue
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(w, "%s\n", b)
}
