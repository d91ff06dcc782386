// Package mqtttest runs an in-process MQTT broker (mochi-mqtt) and a
// cuttable TCP proxy on 127.0.0.1 for tests of the uplink, the dispatcher
// and the fleet client. Everything stops at test cleanup.
package mqtttest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// BrokerOptions configure NewBroker.
type BrokerOptions struct {
	// Users maps user names to passwords; empty allows everybody.
	Users map[string]string
	// WebSocket adds a ws:// listener (wss:// with TLS).
	WebSocket bool
	// TLS makes the TCP listener ssl:// (and the websocket one wss://).
	TLS *tls.Config
}

// Broker is a running in-process broker.
type Broker struct {
	Server *mqtt.Server
	tcp    *listeners.TCP
	wsAddr string
	tls    bool
}

// NewBroker starts a broker on a random loopback port.
func NewBroker(tb testing.TB, opts BrokerOptions) *Broker {
	tb.Helper()
	srv := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if len(opts.Users) == 0 {
		if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
			tb.Fatal(err)
		}
	} else {
		var rules auth.AuthRules
		for u, p := range opts.Users {
			rules = append(rules, auth.AuthRule{Username: auth.RString(u), Password: auth.RString(p), Allow: true})
		}
		if err := srv.AddHook(new(auth.Hook), &auth.Options{Ledger: &auth.Ledger{Auth: rules, ACL: auth.ACLRules{{Filters: auth.Filters{"#": auth.ReadWrite}}}}}); err != nil {
			tb.Fatal(err)
		}
	}
	b := &Broker{Server: srv, tls: opts.TLS != nil}
	b.tcp = listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0", TLSConfig: opts.TLS})
	if err := srv.AddListener(b.tcp); err != nil {
		tb.Fatal(err)
	}
	if opts.WebSocket {
		b.wsAddr = FreeAddr(tb)
		if err := srv.AddListener(listeners.NewWebsocket(listeners.Config{ID: "ws", Address: b.wsAddr, TLSConfig: opts.TLS})); err != nil {
			tb.Fatal(err)
		}
	}
	if err := srv.Serve(); err != nil {
		tb.Fatal(err)
	}
	if b.wsAddr != "" {
		waitListening(tb, b.wsAddr)
	}
	tb.Cleanup(func() { _ = srv.Close() })
	return b
}

// Addr is the TCP listener's host:port.
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL is tcp://host:port (ssl:// with TLS).
func (b *Broker) URL() string {
	if b.tls {
		return "ssl://" + b.Addr()
	}
	return "tcp://" + b.Addr()
}

// WSURL is ws://host:port (wss:// with TLS); "" without WebSocket.
func (b *Broker) WSURL() string {
	if b.wsAddr == "" {
		return ""
	}
	if b.tls {
		return "wss://" + b.wsAddr
	}
	return "ws://" + b.wsAddr
}

// Retained returns the retained payload of topic, if any.
func (b *Broker) Retained(topic string) ([]byte, bool) {
	pk, ok := b.Server.Topics.Retained.Get(topic)
	if !ok {
		return nil, false
	}
	return pk.Payload, true
}

// Inflight is how many QoS 1/2 messages the broker has sent to clientID
// and not yet had acknowledged; -1 when it knows no such client.
func (b *Broker) Inflight(clientID string) int {
	cl, ok := b.Server.Clients.Get(clientID)
	if !ok {
		return -1
	}
	return cl.State.Inflight.Len()
}

// FreeAddr returns a loopback host:port that was free a moment ago, for
// listeners that cannot be given port 0.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(tb testing.TB, addr string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("listener %s did not come up: %v", addr, err)
		}
		// Polling a port: there is no event to wait on.
		time.Sleep(10 * time.Millisecond)
	}
}

// Proxy forwards TCP connections from its loopback port to a target and
// can cut every connection (and refuse new ones) until restored: a WAN
// outage between an agent and its broker.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// NewProxy listens on 127.0.0.1 and forwards to target (host:port).
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is tcp://host:port of the proxy.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// Cut closes every forwarded connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy and waits for its goroutines.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if !p.track(in) {
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			p.untrack(in)
			continue
		}
		if !p.track(out) {
			p.untrack(in)
			continue
		}
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	p.untrack(dst)
	p.untrack(src)
}

// String describes the proxy in test logs.
func (p *Proxy) String() string { return fmt.Sprintf("proxy %s -> %s", p.Addr(), p.target) }
