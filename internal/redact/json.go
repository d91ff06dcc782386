package redact

import (
	"bytes"
	"encoding/json"
)

// JSON returns the JSON document b with String applied to each of its
// strings, one string at a time, so a mask never spans two strings and the
// document stays valid. b is returned as is when nothing changes. Input
// that is not valid JSON is redacted from where it stops being valid, as
// free text.
func JSON(b []byte) []byte {
	if bytes.IndexByte(b, '"') < 0 {
		if !bytes.ContainsAny(b, "@=") {
			return b
		}
		return []byte(String(string(b)))
	}
	var out []byte // nil until something changed
	last := 0      // b[:last] is in out (once out is not nil)
	for i := 0; i < len(b); i++ {
		if b[i] != '"' {
			continue
		}
		end := stringEnd(b, i)
		if end < 0 {
			// Unterminated: the rest is free text.
			rest := string(b[i:])
			if red := String(rest); red != rest {
				out = append(append(out, b[last:i]...), red...)
				last = len(b)
			}
			break
		}
		lit := b[i : end+1]
		if bytes.ContainsAny(lit, "@=\\") {
			var s string
			if json.Unmarshal(lit, &s) == nil {
				if red := String(s); red != s {
					enc, _ := json.Marshal(red)
					out = append(append(out, b[last:i]...), enc...)
					last = end + 1
				}
			}
		}
		i = end
	}
	if out == nil {
		return b
	}
	return append(out, b[last:]...)
}

// stringEnd returns the index of the quote closing the JSON string that
// opens at b[i], or -1.
func stringEnd(b []byte, i int) int {
	for k := i + 1; k < len(b); k++ {
		switch b[k] {
		case '\\':
			k++
		case '"':
			return k
		}
	}
	return -1
}
