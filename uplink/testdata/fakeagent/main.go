// Command fakeagent is a minimal agent for the uplink's SIGKILL test: it
// opens a store in -data, runs the uplink against -broker, appends a health
// message every -every and prints "appended SEQ" after each commit.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/camgate/camgate/agent/store"
	"github.com/camgate/camgate/uplink"
)

type outbox struct{ s *store.Store }

func (o outbox) Pending(after uint64, max int) ([]uplink.Message, error) {
	msgs, err := o.s.OutboxAfter(after, max)
	out := make([]uplink.Message, len(msgs))
	for i, m := range msgs {
		out[i] = uplink.Message{Seq: m.Seq, Kind: m.Kind, Payload: m.Payload}
	}
	return out, err
}
func (o outbox) Acked(seqs ...uint64) error { return o.s.DeleteOutbox(seqs...) }
func (o outbox) Appended() <-chan struct{}  { return o.s.OutboxSignal() }

func main() {
	data := flag.String("data", "", "data directory")
	broker := flag.String("broker", "", "broker url")
	id := flag.String("id", "cg-fake", "agent id")
	every := flag.Duration("every", 20*time.Millisecond, "append interval")
	flag.Parse()
	if err := run(*data, *broker, *id, *every); err != nil {
		fmt.Fprintln(os.Stderr, "fakeagent:", err)
		os.Exit(1)
	}
}

func run(data, broker, id string, every time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(filepath.Join(data, store.FileName), store.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := uplink.New(uplink.Options{
		Broker: broker, AgentID: id, Outbox: outbox{st},
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: zerolog.New(os.Stderr),
	})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return <-done
		case <-t.C:
			seq, _, err := st.AppendOutbox(uplink.KindHealth, func(seq uint64) ([]byte, error) {
				return fmt.Appendf(nil, `{"seq":%d,"ts":%q}`, seq, time.Now().UTC().Format(time.RFC3339Nano)), nil
			})
			if err != nil {
				return err
			}
			fmt.Printf("appended %d\n", seq)
		}
	}
}
