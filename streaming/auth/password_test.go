package auth

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/crypto/argon2"
)

func TestCheckPassword(t *testing.T) {
	sum := sha256.Sum256([]byte("secret"))
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("secret"), salt, 1, 64, 1, 16)
	phc := fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	good := []string{"", "plain text", "sha256:" + base64.StdEncoding.EncodeToString(sum[:]), "argon2:" + phc}
	for _, p := range good {
		if err := CheckPassword(p); err != nil {
			t.Errorf("%q refused: %v", p, err)
		}
	}
	bad := []string{
		"sha256:", "sha256:not*base64", "sha256:" + base64.RawStdEncoding.EncodeToString(sum[:]), "sha256:" + base64.StdEncoding.EncodeToString(sum[:16]),
		"argon2:", "argon2:" + phc[1:], "argon2:$argon2d$v=19$m=64,t=1,p=1$c2FsdA$aGFzaGhh", "argon2:$argon2id$v=16$m=64,t=1,p=1$c2FsdA$aGFzaGhh",
		"argon2:$argon2id$v=19$m=64,t=0,p=1$c2FsdA$aGFzaGhh", "argon2:$argon2id$v=19$m=64,t=1,p=256$c2FsdA$aGFzaGhh",
		"argon2:$argon2id$v=19$m=4,t=1,p=1$c2FsdA$aGFzaGhh", "argon2:$argon2id$v=19$t=1,m=64,p=1$c2FsdA$aGFzaGhh",
		"argon2:$argon2id$v=19$m=64,t=1,p=1$c2FsdA==$aGFzaGhh", "argon2:$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGE",
	}
	for _, p := range bad {
		if err := CheckPassword(p); !errors.Is(err, ErrBadHash) {
			t.Errorf("%q: %v", p, err)
		}
		if _, err := New([]User{{Name: "ops", Pass: p}}, Options{}); err == nil {
			t.Errorf("New took %q", p)
		}
	}
	// The hash CheckPassword accepts is the one Check verifies.
	a, err := New([]User{{Name: "ops", Pass: "argon2:" + phc, Permissions: []Permission{{Action: ActionRead}}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Check(Request{Action: ActionRead, User: "ops", Pass: "secret"}); err != nil {
		t.Fatalf("argon2 login: %v", err)
	}
	if err := a.Check(Request{Action: ActionRead, User: "ops", Pass: "wrong"}); err == nil {
		t.Fatal("argon2 login with a wrong password")
	}
}
