package guard

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxPathName is the longest path name, in bytes.
const MaxPathName = 64

// ValidatePathName checks a concrete path name (not a "~regexp" entry of
// the config): letters, digits, _ - . and /, at most MaxPathName bytes,
// no empty segment (leading, trailing or double slash) and no "..". The
// error is an *InvalidPathNameError.
func ValidatePathName(name string) error {
	if name == "" || len(name) > MaxPathName {
		return &InvalidPathNameError{Name: name, Reason: "use letters, digits, _ - . / (at most 64)"}
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.', c == '/':
		default:
			return &InvalidPathNameError{Name: name, Reason: "use letters, digits, _ - . / (at most 64)"}
		}
	}
	if name[0] == '/' || name[len(name)-1] == '/' || strings.Contains(name, "//") || strings.Contains(name, "..") {
		return &InvalidPathNameError{Name: name, Reason: "empty segment or '..'"}
	}
	return nil
}

// InvalidPathNameError is a name ValidatePathName refused. Its message
// quotes at most the first 64 bytes of the name: the name comes from a
// client and may be long or binary.
type InvalidPathNameError struct {
	Name   string
	Reason string
}

func (e *InvalidPathNameError) Error() string {
	return fmt.Sprintf("invalid path name %s: %s", quoteShort(e.Name), e.Reason)
}

// quoteShort quotes s in at most MaxPathName+2 characters: a longer s,
// or one whose escapes (\x81 is four characters) make the quoted form
// longer, is cut, with its length in bytes noted.
func quoteShort(s string) string {
	if q := strconv.Quote(s); len(q) <= MaxPathName+2 {
		return q
	}
	cut := min(len(s), MaxPathName)
	for cut > 0 && len(strconv.Quote(s[:cut])) > MaxPathName+2 {
		cut--
	}
	return strconv.Quote(s[:cut]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}
