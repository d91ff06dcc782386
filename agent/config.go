package agent

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/agent/conf/mediamtx"
	"github.com/camgate/camgate/hal"
	"github.com/camgate/camgate/streaming/auth"
	"github.com/camgate/camgate/streaming/webrtc"
	"github.com/camgate/camgate/uplink"
)

// loadConfig loads the configuration as run, check-config and service
// install all do: conf's own validation plus the rules the subsystems own,
// so that a file check-config accepts is one run accepts too.
func loadConfig(file string, environ []string) (*conf.Config, error) {
	cfg, err := conf.Load(file, environ, checkSubsystems)
	if err != nil && file != "" {
		// A mediamtx.yml given as is would be told as a page of "unknown
		// key" errors; say what it is and how to convert it instead.
		if b, rerr := os.ReadFile(file); rerr == nil {
			if keys := mediamtx.Detect(b); len(keys) > 0 {
				return nil, fmt.Errorf("%s is a MediaMTX configuration (%s...), not a camgate one; convert it with\n  camgate import-mediamtx %s > camgate.yml", file, strings.Join(keys, ", "), file)
			}
		}
	}
	return cfg, err
}

// checkSubsystems applies, at load time and with the config key named,
// the checks the subsystems' constructors make of their options.
func checkSubsystems(c *conf.Config) error {
	if id := c.Agent.ID; id != "" {
		if err := uplink.ValidateAgentID(id); err != nil {
			return &conf.Error{Key: "agent.id", Msg: without(err, uplink.ErrBadTopic)}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(c.Agent.Labels)) {
		if err := uplink.ValidateLabel(k, c.Agent.Labels[k]); err != nil {
			return &conf.Error{Key: "agent.labels." + k, Msg: without(err, uplink.ErrBadLabel)}
		}
	}
	if err := uplink.ValidateTopicPrefix(c.Uplink.TopicPrefix); err != nil {
		return &conf.Error{Key: "uplink.topicPrefix", Msg: without(err, uplink.ErrBadTopic)}
	}
	if u := c.Uplink; u.Broker != "" {
		secure, err := uplink.CheckBroker(string(u.Broker))
		if err != nil {
			return &conf.Error{Key: "uplink.broker", Msg: strings.TrimPrefix(without(err, uplink.ErrBadBroker), "broker: ")}
		}
		if secure && u.TLS.CA != "" {
			if _, err := uplink.LoadTLS(u.TLS.CA, "", ""); err != nil {
				return &conf.Error{Key: "uplink.tls.ca", Msg: err.Error()}
			}
		}
		if secure && u.TLS.Cert != "" {
			if _, err := uplink.LoadTLS("", u.TLS.Cert, u.TLS.Key); err != nil {
				return &conf.Error{Key: "uplink.tls.cert", Msg: err.Error()}
			}
		}
	}
	for name, p := range c.Paths {
		for _, cmd := range []struct{ key, line string }{{"runOnInit", string(p.RunOnInit)}, {"runOnDemand", string(p.RunOnDemand)}} {
			if cmd.line == "" {
				continue
			}
			if err := hal.CheckCommandLine(cmd.line); err != nil {
				return &conf.Error{Key: "paths." + name + "." + cmd.key, Msg: err.Error()}
			}
		}
	}
	for i, u := range c.Auth.Users {
		if err := auth.CheckPassword(string(u.Pass)); err != nil {
			return &conf.Error{Key: fmt.Sprintf("auth.users[%d].pass", i), Msg: without(err, auth.ErrBadHash)}
		}
	}
	if key, err := checkRecord(c.PathDefaults, conf.PathConf{}); err != nil {
		return &conf.Error{Key: "pathDefaults." + key, Msg: err.Error()}
	}
	for name, p := range c.Paths {
		if key, err := checkRecord(c.PathDefaults, p); err != nil {
			// A path that sets no record key inherits the defaults' fault,
			// reported above.
			return &conf.Error{Key: "paths." + name + "." + key, Msg: err.Error()}
		}
	}
	if c.WebRTC.Address != "" {
		if err := webrtcOptions(c.WebRTC).Validate(); err != nil {
			var oe *webrtc.OptionError
			if errors.As(err, &oe) {
				return &conf.Error{Key: "webrtc." + oe.Option, Msg: oe.Err.Error()}
			}
			return &conf.Error{Key: "webrtc", Msg: err.Error()}
		}
	}
	return nil
}

// webrtcOptions converts the webrtc section; the caller adds the paths,
// the authenticator and the logger.
func webrtcOptions(w conf.WebRTC) webrtc.Options {
	wo := webrtc.Options{
		Address:               w.Address,
		ICEUDPMuxAddress:      w.ICEUDPMuxAddress,
		ICETCPMuxAddress:      w.ICETCPMuxAddress,
		IPsFromInterfaces:     w.IPsFromInterfaces,
		IPsFromInterfacesList: w.IPsFromInterfacesList,
		AdditionalHosts:       w.AdditionalHosts,
		MaxConns:              w.MaxConnections,
		MaxConnsPerIP:         w.MaxConnectionsPerIP,
		MaxPendingSessions:    w.MaxPendingSessions,
	}
	for _, s := range w.ICEServers {
		wo.ICEServers = append(wo.ICEServers, webrtc.ICEServer{URL: s.URL, Username: s.Username, Password: string(s.Password)})
	}
	return wo
}

// without is err's message less the sentinel it ends with, which says
// nothing more once the config key is named.
func without(err, sentinel error) string {
	return strings.TrimSuffix(err.Error(), ": "+sentinel.Error())
}
