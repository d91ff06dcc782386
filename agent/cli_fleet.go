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
	"text/tabwriter"
	"time"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/internal/redact"
	"github.com/camgate/camgate/uplink"
	"github.com/camgate/camgate/uplink/fleet"
)

const fleetUsage = `usage: camgate fleet [flags] ls | status ID | cmd ID NAME [JSON] | watch [ID]

  ls                 agents with their retained status, and the age of the last health
                     seen while listening (-listen)
  status ID          the agent's retained status (exit 1 if offline)
  cmd ID NAME [JSON] send a command (JSON = its args) and print the reply (exit 1 if not ok)
  watch [ID]         print status, health and events as they come (all agents by default)

The broker, credentials, TLS files and topic prefix come from the uplink
section of -c FILE (embedded defaults and CAMGATE_UPLINK_* otherwise);
flags override them.

flags:
`

// runFleet handles "camgate fleet ...": the fleet side in miniature.
func runFleet(ctx context.Context, args []string, stdout io.Writer) int {
	return fleetMain(ctx, args, stdout, os.Stderr)
}

func fleetMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, fleetUsage); fs.PrintDefaults() }
	file := fs.String("c", "", "config file to take the uplink settings from")
	broker := fs.String("broker", "", "broker URL (tcp://, ssl://, ws://, wss://)")
	user := fs.String("user", "", "broker user name")
	pass := fs.String("pass", "", "broker password")
	prefix := fs.String("prefix", "", "topic prefix")
	ca := fs.String("ca", "", "TLS CA file (PEM)")
	cert := fs.String("cert", "", "TLS client certificate (PEM)")
	key := fs.String("key", "", "TLS client key (PEM)")
	timeout := fs.Duration("timeout", 10*time.Second, "how long cmd waits for the reply")
	listen := fs.Duration("listen", 2*time.Second, "how long ls collects retained status and health")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return 2
	}
	// Flags may also follow the subcommand ("ls -listen 5s").
	sub := rest[0]
	if err := fs.Parse(rest[1:]); err != nil {
		return 2
	}
	rest = fs.Args()
	cfg, err := conf.Load(*file, os.Environ())
	if err != nil {
		fmt.Fprintln(stderr, "camgate fleet: config:", redact.Error(err))
		return 1
	}
	u := cfg.Uplink
	opts := fleet.Options{
		Broker: pick(*broker, string(u.Broker)), Username: pick(*user, u.Username), Password: pick(*pass, string(u.Password)),
		CAFile: pick(*ca, u.TLS.CA), CertFile: pick(*cert, u.TLS.Cert), KeyFile: pick(*key, u.TLS.Key),
		TopicPrefix: pick(*prefix, u.TopicPrefix),
	}
	if opts.Broker == "" {
		fmt.Fprintln(stderr, "camgate fleet: no broker (set -broker or uplink.broker)")
		return 2
	}

	want := map[string][2]int{"ls": {0, 0}, "status": {1, 1}, "cmd": {2, 3}, "watch": {0, 1}}
	n, ok := want[sub]
	if !ok || len(rest) < n[0] || len(rest) > n[1] {
		fs.Usage()
		return 2
	}
	var cmdArgs json.RawMessage
	if sub == "cmd" && len(rest) == 3 {
		if !json.Valid([]byte(rest[2])) {
			fmt.Fprintln(stderr, "camgate fleet: args are not valid JSON")
			return 2
		}
		cmdArgs = json.RawMessage(rest[2])
	}

	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	c, err := fleet.Dial(dctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintln(stderr, "camgate fleet:", redact.Error(err))
		return 1
	}
	defer c.Close()

	switch sub {
	case "ls":
		return fleetLs(ctx, c, *listen, stdout, stderr)
	case "status":
		st, err := c.Status(ctx, rest[0])
		if err != nil {
			fmt.Fprintln(stderr, "camgate fleet:", redact.Error(err))
			return 1
		}
		printJSON(stdout, st)
		if st.State != uplink.StateOnline {
			return 1
		}
		return 0
	case "cmd":
		cctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		r, err := c.Command(cctx, rest[0], rest[1], cmdArgs)
		if err != nil {
			fmt.Fprintln(stderr, "camgate fleet:", redact.Error(err))
			return 1
		}
		printJSON(stdout, r)
		if !r.OK {
			return 1
		}
		return 0
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
			fmt.Fprintln(stderr, "camgate fleet:", redact.Error(err))
			return 1
		}
		return 0
	}
}

func fleetLs(ctx context.Context, c *fleet.Client, listen time.Duration, stdout, stderr io.Writer) int {
	agents, err := c.Agents(ctx, listen)
	if err != nil {
		fmt.Fprintln(stderr, "camgate fleet:", redact.Error(err))
		return 1
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tREASON\tVERSION\tSINCE\tLAST HEALTH")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, orDash(a.Status.State), orDash(a.Status.Reason), orDash(a.Status.Version), since, health)
	}
	_ = tw.Flush()
	return 0
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
