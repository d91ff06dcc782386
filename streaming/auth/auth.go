// Package auth decides who may read, publish and use the API, from the
// configured users: a name (or "any"), a password (plain, sha256: or
// argon2: hash), the networks they may come from and their permissions.
// RTSP, WHEP and the HTTP API share it.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Action is what a request wants to do.
type Action string

// Actions.
const (
	ActionRead    Action = "read"
	ActionPublish Action = "publish"
	ActionAPI     Action = "api"
	// ActionPlayback is reading recordings (the playback listener).
	ActionPlayback Action = "playback"
)

var (
	// ErrCredentialsRequired means no anonymous entry allows the request:
	// the client should retry with credentials (401 with a challenge).
	ErrCredentialsRequired = errors.New("credentials required")
	// ErrDenied means the credentials given do not allow the request.
	ErrDenied = errors.New("not allowed")
)

// Permission is an action, optionally limited to a path or "~regexp".
type Permission struct {
	Action Action
	Path   string
}

// User is one entry of auth.users.
type User struct {
	Name        string // "any" matches everybody without credentials
	Pass        string // plain, "sha256:BASE64" or "argon2:..." (PHC string)
	IPs         []string
	Permissions []Permission
}

type user struct {
	name  string
	pass  string
	nets  []*net.IPNet
	perms []perm
}

type perm struct {
	action Action
	path   string
	re     *regexp.Regexp
}

// Authenticator checks requests against the users.
type Authenticator struct {
	users []user
}

// New compiles the users.
func New(users []User) (*Authenticator, error) {
	a := &Authenticator{}
	for i, u := range users {
		if err := CheckPassword(u.Pass); err != nil {
			return nil, fmt.Errorf("auth user %d: pass: %w", i, err)
		}
		cu := user{name: u.Name, pass: u.Pass}
		for _, s := range u.IPs {
			if !strings.Contains(s, "/") {
				if ip := net.ParseIP(s); ip != nil && ip.To4() != nil {
					s += "/32"
				} else {
					s += "/128"
				}
			}
			_, n, err := net.ParseCIDR(s)
			if err != nil {
				return nil, fmt.Errorf("auth user %d: ips: %w", i, err)
			}
			cu.nets = append(cu.nets, n)
		}
		for _, p := range u.Permissions {
			cp := perm{action: p.Action, path: p.Path}
			if strings.HasPrefix(p.Path, "~") {
				re, err := regexp.Compile(p.Path[1:])
				if err != nil {
					return nil, fmt.Errorf("auth user %d: permission path: %w", i, err)
				}
				cp.re = re
			}
			cu.perms = append(cu.perms, cp)
		}
		a.users = append(a.users, cu)
	}
	return a, nil
}

// Request is one attempt to do something.
type Request struct {
	Action Action
	Path   string
	IP     net.IP
	// User and Pass as sent (Basic auth, bearer token split as user:pass,
	// or the user name of a Digest header with Pass empty).
	User string
	Pass string
	// VerifyPlain, when set, checks the request's own proof (RTSP Digest)
	// against a user's plain password. Hashed passwords cannot be checked
	// this way; such users need Basic auth.
	VerifyPlain func(user, pass string) bool
}

// Check returns nil when some user entry allows the request.
func (a *Authenticator) Check(r Request) error {
	hasCreds := r.User != ""
	for _, u := range a.users {
		if !u.allows(r.Action, r.Path) || !u.fromAllowed(r.IP) {
			continue
		}
		if u.name == "any" {
			return nil
		}
		if !hasCreds || r.User != u.name {
			continue
		}
		if u.passwordMatches(r) {
			return nil
		}
	}
	if !hasCreds {
		return ErrCredentialsRequired
	}
	return ErrDenied
}

// NeedsCredentials reports whether some named user could allow action on
// path from ip, i.e. whether a 401 challenge is worth sending.
func (a *Authenticator) NeedsCredentials(action Action, path string, ip net.IP) bool {
	for _, u := range a.users {
		if u.name != "any" && u.allows(action, path) && u.fromAllowed(ip) {
			return true
		}
	}
	return false
}

func (u *user) allows(action Action, path string) bool {
	for _, p := range u.perms {
		if p.action != action {
			continue
		}
		switch {
		case p.path == "":
			return true
		case p.re != nil:
			if p.re.MatchString(path) {
				return true
			}
		case p.path == path:
			return true
		}
	}
	return false
}

func (u *user) fromAllowed(ip net.IP) bool {
	if len(u.nets) == 0 {
		return true
	}
	if ip == nil {
		return false
	}
	for _, n := range u.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (u *user) passwordMatches(r Request) bool {
	switch {
	case strings.HasPrefix(u.pass, "sha256:"):
		if r.Pass == "" {
			return false
		}
		sum := sha256.Sum256([]byte(r.Pass))
		want, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(u.pass, "sha256:"))
		return err == nil && subtle.ConstantTimeCompare(sum[:], want) == 1
	case strings.HasPrefix(u.pass, "argon2:"):
		return r.Pass != "" && argon2Matches(strings.TrimPrefix(u.pass, "argon2:"), r.Pass)
	default:
		if r.VerifyPlain != nil && r.Pass == "" {
			return r.VerifyPlain(u.name, u.pass)
		}
		return r.Pass != "" && subtle.ConstantTimeCompare([]byte(r.Pass), []byte(u.pass)) == 1
	}
}

// argon2Matches checks pass against a PHC string (see parseArgon2).
func argon2Matches(phc, pass string) bool {
	h, err := parseArgon2(phc)
	if err != nil {
		return false
	}
	var got []byte
	if h.id {
		got = argon2.IDKey([]byte(pass), h.salt, h.t, h.m, h.p, uint32(len(h.hash)))
	} else {
		got = argon2.Key([]byte(pass), h.salt, h.t, h.m, h.p, uint32(len(h.hash)))
	}
	return subtle.ConstantTimeCompare(got, h.hash) == 1
}
