package update

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"aead.dev/minisign"
)

// maxLegacyMessage bounds files checked against a legacy (not prehashed)
// minisign signature, which needs the whole file in memory.
const maxLegacyMessage = 256 << 20

// Verified says who signed a file.
type Verified struct {
	KeyID          string // the key's id as minisign prints it
	TrustedComment string
}

// Keys are the minisign public keys updates and releases are checked
// against.
type Keys []minisign.PublicKey

// ParseKeys reads minisign public keys: the base64 line of minisign.pub
// ("RW..."), or the whole file.
func ParseKeys(texts []string) (Keys, error) {
	keys := make(Keys, 0, len(texts))
	for _, t := range texts {
		var k minisign.PublicKey
		if err := k.UnmarshalText([]byte(strings.TrimSpace(t))); err != nil {
			return nil, fmt.Errorf("public key %q: %w", t, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func keyID(id uint64) string { return strings.ToUpper(strconv.FormatUint(id, 16)) }

// VerifyFile checks the minisign signature sig (the text of a .minisig
// file) of the file at path against keys.
func (keys Keys) VerifyFile(path string, sig []byte) (Verified, error) {
	if len(keys) == 0 {
		return Verified{}, ErrNoKeys
	}
	var s minisign.Signature
	if err := s.UnmarshalText(bytes.TrimSpace(sig)); err != nil {
		return Verified{}, fmt.Errorf("signature is not in minisign's format: %w", err)
	}
	var key *minisign.PublicKey
	for i := range keys {
		if keys[i].ID() == s.KeyID {
			key = &keys[i]
		}
	}
	if key == nil {
		known := make([]string, len(keys))
		for i, k := range keys {
			known[i] = keyID(k.ID())
		}
		return Verified{}, fmt.Errorf("signed by key %s, which is not one of the public keys (%s)", keyID(s.KeyID), strings.Join(known, ", "))
	}
	f, err := os.Open(path)
	if err != nil {
		return Verified{}, err
	}
	defer f.Close()
	ok := false
	if s.Algorithm == minisign.HashEdDSA {
		r := minisign.NewReader(f)
		if _, err := io.Copy(io.Discard, r); err != nil {
			return Verified{}, fmt.Errorf("read %s: %w", path, err)
		}
		ok = r.Verify(*key, sig)
	} else {
		msg, err := io.ReadAll(io.LimitReader(f, maxLegacyMessage+1))
		if err != nil {
			return Verified{}, fmt.Errorf("read %s: %w", path, err)
		}
		if len(msg) > maxLegacyMessage {
			return Verified{}, errors.New("legacy (not prehashed) signature over a file too large to check; sign with minisign 0.10 or later")
		}
		ok = minisign.Verify(*key, msg, sig)
	}
	if !ok {
		return Verified{}, fmt.Errorf("signature by key %s does not match the file", keyID(s.KeyID))
	}
	return Verified{KeyID: keyID(s.KeyID), TrustedComment: s.TrustedComment}, nil
}
