package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/crypto/argon2"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func defaults(t *testing.T, extra ...User) *Authenticator {
	t.Helper()
	users := append([]User{
		{Name: "any", Permissions: []Permission{{Action: ActionRead}}},
		{Name: "any", IPs: []string{"127.0.0.1/32", "::1/128"}, Permissions: []Permission{{Action: ActionPublish}, {Action: ActionAPI}}},
	}, extra...)
	a, err := New(users, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

func sha(p string) string {
	s := sha256.Sum256([]byte(p))
	return "sha256:" + base64.StdEncoding.EncodeToString(s[:])
}

func TestCheck(t *testing.T) {
	salt := []byte("0123456789abcdef")
	hash := argon2.IDKey([]byte("pw3"), salt, 1, 1024, 1, 32)
	phc := fmt.Sprintf("argon2:$argon2id$v=19$m=1024,t=1,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(hash))
	a := defaults(t,
		User{Name: "ops", Pass: "pw1", Permissions: []Permission{{Action: ActionPublish}}},
		User{Name: "cam", Pass: sha("pw2"), Permissions: []Permission{{Action: ActionPublish, Path: "door"}}},
		User{Name: "arg", Pass: phc, Permissions: []Permission{{Action: ActionPublish, Path: "~^yard"}}},
	)
	lan := net.ParseIP("192.0.2.10")
	lo := net.ParseIP("127.0.0.1")
	cases := []struct {
		name string
		req  Request
		want error
	}{
		{"anonymous read from LAN", Request{Action: ActionRead, Path: "x", IP: lan}, nil},
		{"anonymous publish from loopback", Request{Action: ActionPublish, Path: "x", IP: lo}, nil},
		{"anonymous publish from LAN", Request{Action: ActionPublish, Path: "x", IP: lan}, ErrCredentialsRequired},
		{"anonymous api from LAN", Request{Action: ActionAPI, IP: lan}, ErrCredentialsRequired},
		{"plain password", Request{Action: ActionPublish, Path: "x", IP: lan, User: "ops", Pass: "pw1"}, nil},
		{"wrong password", Request{Action: ActionPublish, Path: "x", IP: lan, User: "ops", Pass: "nope"}, ErrDenied},
		{"sha256 on its path", Request{Action: ActionPublish, Path: "door", IP: lan, User: "cam", Pass: "pw2"}, nil},
		{"sha256 on another path", Request{Action: ActionPublish, Path: "gate", IP: lan, User: "cam", Pass: "pw2"}, ErrDenied},
		{"argon2 regexp path", Request{Action: ActionPublish, Path: "yard1", IP: lan, User: "arg", Pass: "pw3"}, nil},
		{"argon2 wrong", Request{Action: ActionPublish, Path: "yard1", IP: lan, User: "arg", Pass: "pw4"}, ErrDenied},
		{"digest verifier", Request{Action: ActionPublish, Path: "x", IP: lan, User: "ops", VerifyPlain: func(u, p string) bool { return u == "ops" && p == "pw1" }}, nil},
		{"digest verifier fails", Request{Action: ActionPublish, Path: "x", IP: lan, User: "ops", VerifyPlain: func(string, string) bool { return false }}, ErrDenied},
		{"unknown user", Request{Action: ActionPublish, Path: "x", IP: lan, User: "eve", Pass: "x"}, ErrDenied},
	}
	for _, c := range cases {
		if got := a.Check(c.req); !errors.Is(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	if !a.NeedsCredentials(ActionPublish, "x", lan) {
		t.Error("NeedsCredentials false with a publish user configured")
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := New([]User{{Name: "any", IPs: []string{"10.0.0.0/99"}}}, Options{}); err == nil {
		t.Fatal("bad CIDR accepted")
	}
	if _, err := New([]User{{Name: "any", Permissions: []Permission{{Action: ActionRead, Path: "~("}}}}, Options{}); err == nil {
		t.Fatal("bad regexp accepted")
	}
}
