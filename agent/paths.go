package agent

import (
	"strings"

	"github.com/camgate/camgate/agent/conf"
	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

// pathConfig applies pathDefaults to a path entry.
func pathConfig(d conf.PathDefaults, p conf.PathConf) streaming.PathConfig {
	c := streaming.PathConfig{
		Source:         string(p.Source),
		SourceOnDemand: d.SourceOnDemand,
		StartTimeout:   d.SourceOnDemandStartTimeout.D(),
		CloseAfter:     d.SourceOnDemandCloseAfter.D(),
		RTSPTransport:  d.RTSPTransport,
		ReadTimeout:    d.ReadTimeout.D(),
		MaxReaders:     d.MaxReaders,
		RetryMax:       d.SourceRetryMax.D(),

		RunOnInit:               string(p.RunOnInit),
		RunOnInitRestart:        d.RunOnInitRestart,
		RunOnDemand:             string(p.RunOnDemand),
		RunOnDemandRestart:      d.RunOnDemandRestart,
		RunOnDemandStartTimeout: d.RunOnDemandStartTimeout.D(),
		RunOnDemandCloseAfter:   d.RunOnDemandCloseAfter.D(),
	}
	if p.RunOnInitRestart != nil {
		c.RunOnInitRestart = *p.RunOnInitRestart
	}
	if p.RunOnDemandRestart != nil {
		c.RunOnDemandRestart = *p.RunOnDemandRestart
	}
	if p.RunOnDemandStartTimeout != nil {
		c.RunOnDemandStartTimeout = p.RunOnDemandStartTimeout.D()
	}
	if p.RunOnDemandCloseAfter != nil {
		c.RunOnDemandCloseAfter = p.RunOnDemandCloseAfter.D()
	}
	if p.SourceOnDemand != nil {
		c.SourceOnDemand = *p.SourceOnDemand
	}
	if p.SourceOnDemandStartTimeout != nil {
		c.StartTimeout = p.SourceOnDemandStartTimeout.D()
	}
	if p.SourceOnDemandCloseAfter != nil {
		c.CloseAfter = p.SourceOnDemandCloseAfter.D()
	}
	if p.RTSPTransport != nil {
		c.RTSPTransport = *p.RTSPTransport
	}
	if p.ReadTimeout != nil {
		c.ReadTimeout = p.ReadTimeout.D()
	}
	if p.MaxReaders != nil {
		c.MaxReaders = *p.MaxReaders
	}
	if p.SourceRetryMax != nil {
		c.RetryMax = p.SourceRetryMax.D()
	}
	// Validated before: the error cannot happen; the value comes normalised.
	fp, _ := conf.ParseFingerprint(string(p.SourceFingerprint))
	c.SourceFingerprint = string(fp)
	return c
}

func authUsers(us []conf.User) []auth.User {
	out := make([]auth.User, 0, len(us))
	for _, u := range us {
		au := auth.User{Name: u.User, Pass: string(u.Pass), IPs: u.IPs}
		for _, p := range u.Permissions {
			au.Permissions = append(au.Permissions, auth.Permission{Action: auth.Action(p.Action), Path: p.Path})
		}
		out = append(out, au)
	}
	return out
}

// hasHashedPassword reports whether some user's password is stored hashed,
// which rules out RTSP Digest challenges (they need the plain password).
func hasHashedPassword(us []conf.User) bool {
	for _, u := range us {
		p := string(u.Pass)
		if strings.HasPrefix(p, "sha256:") || strings.HasPrefix(p, "argon2:") {
			return true
		}
	}
	return false
}
