package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadHash is wrapped by the errors of CheckPassword.
var ErrBadHash = errors.New("malformed password hash")

// CheckPassword checks the form of a configured password: plain text is
// taken as is; "sha256:" must be followed by the standard (padded) base64
// of 32 bytes, "argon2:" by a PHC string New can verify against. A
// malformed hash would otherwise never match, and the user could never
// log in. The errors wrap ErrBadHash and never hold the password.
func CheckPassword(pass string) error {
	switch {
	case strings.HasPrefix(pass, "sha256:"):
		b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(pass, "sha256:"))
		if err != nil {
			return fmt.Errorf("sha256: not standard base64 (printf %%s secret | sha256sum | xxd -r -p | base64): %w", ErrBadHash)
		}
		if len(b) != 32 {
			return fmt.Errorf("sha256: %d bytes, want the 32 bytes of a SHA-256: %w", len(b), ErrBadHash)
		}
	case strings.HasPrefix(pass, "argon2:"):
		if _, err := parseArgon2(strings.TrimPrefix(pass, "argon2:")); err != nil {
			return fmt.Errorf("argon2: %w: %w", err, ErrBadHash)
		}
	}
	return nil
}

// argon2Hash is a parsed PHC string.
type argon2Hash struct {
	id         bool // argon2id, else argon2i
	m, t       uint32
	p          uint8
	salt, hash []byte
}

// parseArgon2 reads a PHC string "$argon2id$v=19$m=65536,t=1,p=4$SALT$HASH"
// (argon2id or argon2i, version 19, the one x/crypto computes; salt and
// hash in unpadded base64).
func parseArgon2(phc string) (argon2Hash, error) {
	var h argon2Hash
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" {
		return h, errors.New(`not a PHC string "$argon2id$v=19$m=...,t=...,p=...$SALT$HASH"`)
	}
	switch parts[1] {
	case "argon2id":
		h.id = true
	case "argon2i":
	default:
		return h, fmt.Errorf("variant %q: want argon2id or argon2i", parts[1])
	}
	if parts[2] != "v=19" {
		return h, fmt.Errorf("version %q: want v=19", parts[2])
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return h, fmt.Errorf("parameters %q: want m=M,t=T,p=P", parts[3])
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		bits := 32
		if name == "p" {
			bits = 8
		}
		n, err := strconv.ParseUint(v, 10, bits)
		if !ok || err != nil || n == 0 {
			return h, fmt.Errorf("parameter %q: want %s= and a positive number (at most %d)", params[i], name, uint64(1)<<bits-1)
		}
		switch name {
		case "m":
			h.m = uint32(n)
		case "t":
			h.t = uint32(n)
		case "p":
			h.p = uint8(n)
		}
	}
	if h.m < 8*uint32(h.p) {
		return h, fmt.Errorf("m=%d: argon2 needs at least 8 KiB per thread (m=%d)", h.m, 8*uint32(h.p))
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) == 0 {
		return h, errors.New("salt: want unpadded base64")
	}
	if h.hash, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.hash) < 4 {
		return h, errors.New("hash: want unpadded base64 of at least 4 bytes")
	}
	return h, nil
}
