package guard

import (
	"errors"
	"strings"
	"testing"
)

// pathNameCases feed both the test and the fuzz corpus.
var pathNameCases = []struct {
	name string
	ok   bool
}{
	{"cam1", true},
	{"yard/gate-1", true},
	{"a.b_c-D/9", true},
	{"./x", true}, // the API's rule: "." is a name like any other
	{strings.Repeat("a", 64), true},
	{"", false},
	{strings.Repeat("a", 65), false},
	{strings.Repeat("a", 2048), false},
	{"../../etc/passwd", false},
	{"a/../b", false},
	{"a..b", false},
	{"/abs", false},
	{"trail/", false},
	{"a//b", false},
	{"nul\x00byte", false},
	{"sp ace", false},
	{"pct%2e%2e", false},
	{"back\\slash", false},
	{"caf\u00e9", false},
	{"~regexp", false},
	{"q?x=1", false},
}

func TestValidatePathName(t *testing.T) {
	for _, tc := range pathNameCases {
		err := ValidatePathName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidatePathName(%.70q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		var ie *InvalidPathNameError
		if err != nil && !errors.As(err, &ie) {
			t.Errorf("error %T is not an *InvalidPathNameError", err)
		}
	}
}

func TestInvalidPathNameErrorIsShort(t *testing.T) {
	err := ValidatePathName(strings.Repeat("x", 2000) + "\x00")
	if err == nil {
		t.Fatal("2 KB name accepted")
	}
	if msg := err.Error(); len(msg) > 160 || !strings.Contains(msg, "2001 bytes") {
		t.Fatalf("message %d bytes: %q", len(msg), msg)
	}
}

// FuzzValidatePathName: whatever is accepted is a name no file system or
// URL could read as anything but itself.
func FuzzValidatePathName(f *testing.F) {
	for _, tc := range pathNameCases {
		f.Add(tc.name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidatePathName(name)
		if err != nil {
			if len(err.Error()) > 200 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
			return
		}
		if name == "" || len(name) > MaxPathName {
			t.Fatalf("accepted length %d", len(name))
		}
		for _, seg := range strings.Split(name, "/") {
			if seg == "" || seg == ".." {
				t.Fatalf("accepted segment %q in %q", seg, name)
			}
		}
		if strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./") != "" {
			t.Fatalf("accepted %q", name)
		}
	})
}
