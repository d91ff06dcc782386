package redact

import (
	"errors"
	"strings"
	"testing"
)

var cases = []struct{ in, want string }{
	{"rtsp://10.0.0.64:554/s", "rtsp://10.0.0.64:554/s"},
	{"rtsp://admin:secret@10.0.0.64:554/s", "rtsp://admin:***@10.0.0.64:554/s"},
	{"rtsps://admin:p%40ss@cam/x?y=1", "rtsps://admin:***@cam/x?y=1"},
	{"rtsp://onlyuser@cam/x", "rtsp://onlyuser@cam/x"},
	{"ssl://u:p@broker:8883", "ssl://u:***@broker:8883"},
}

func TestURL(t *testing.T) {
	for _, c := range cases {
		if got := URL(c.in); got != c.want {
			t.Errorf("URL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestString(t *testing.T) {
	in := `dial "rtsp://admin:secret@10.0.0.64:554/s": timeout; retry rtsp://u:hunter2@h/x`
	got := String(in)
	for _, secret := range []string{"secret", "hunter2"} {
		if strings.Contains(got, secret) {
			t.Fatalf("String leaked %q: %s", secret, got)
		}
	}
	if !strings.Contains(got, "rtsp://admin:***@10.0.0.64:554/s") {
		t.Fatalf("String = %q", got)
	}
	if Error(errors.New(in)) != got {
		t.Fatal("Error differs from String")
	}
	if Error(nil) != "" {
		t.Fatal("Error(nil) not empty")
	}
}

func FuzzString(f *testing.F) {
	for _, c := range cases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		if !strings.Contains(s, "@") && out != s {
			t.Fatalf("changed text without @: %q -> %q", s, out)
		}
	})
}
