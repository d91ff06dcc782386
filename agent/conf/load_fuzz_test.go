package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadFileCases feed TestLoadFileCases and seed FuzzLoadFile: whole files
// through Load (defaults, file, Validate), valid and not.
var loadFileCases = []struct {
	name, body string
	ok         bool
}{
	{"empty", "", true},
	{"comment only", "# nothing\n", true},
	{"rtsp section", "rtsp:\n  address: 127.0.0.1:9554\n  transports: [tcp]\n", true},
	{"paths", "paths:\n  cam1:\n    source: rtsp://admin:pw@10.0.0.64:554/s\n    sourceOnDemand: false\n  ~^cam[0-9]+$:\n    source: publisher\n", true},
	{"demo removed", "paths:\n  demo: null\n", true},
	{"users", "auth:\n  users:\n    - {user: ops, pass: secret, ips: [127.0.0.1/32], permissions: [{action: read, path: cam1}]}\n", true},
	{"uplink", "uplink:\n  broker: mqtts://u:pw@broker.example:8883\n  tls: {ca: /x/ca.pem}\n", true},
	{"durations and sizes", "pathDefaults:\n  readTimeout: 5s\n  sourceOnDemandCloseAfter: 1m\nagent:\n  goMemLimit: 64MiB\n", true},
	{"not yaml", "::: [", false},
	{"unknown key", "rtsp:\n  adress: :1\n", false},
	{"wrong type", "rtsp: 5\n", false},
	{"bad duration", "pathDefaults:\n  readTimeout: soon\n", false},
	{"bad source", "paths:\n  x:\n    source: ftp://x\n", false},
	{"bad name", "paths:\n  ../x:\n    source: demo\n", false},
	{"bad regexp", "paths:\n  ~(:\n    source: demo\n", false},
	{"tab indent", "rtsp:\n\taddress: :1\n", false},
	{"anchors", "a: &a [1,2]\nrtsp:\n  address: *a\n", false},
}

// loadFile writes body to a fixed file in dir and loads it; a
// configuration that loads validates again and marshals, and an error
// names the file.
func loadFile(t *testing.T, dir, body string) (*Config, error) {
	t.Helper()
	p := filepath.Join(dir, "camgate.yml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, nil)
	if err != nil {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error does not name the file: %v", err)
		}
		return nil, err
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("loaded configuration fails Validate: %v", err)
	}
	if _, err := c.Marshal(); err != nil {
		t.Fatalf("loaded configuration does not marshal: %v", err)
	}
	return c, nil
}

func TestLoadFileCases(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range loadFileCases {
		_, err := loadFile(t, dir, tc.body)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// FuzzLoadFile runs arbitrary files through Load: it must not panic, a
// loaded configuration is valid and marshals, and every error names the
// file.
func FuzzLoadFile(f *testing.F) {
	for _, tc := range loadFileCases {
		f.Add(tc.body)
	}
	for _, tc := range errorCases {
		f.Add(tc.body)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body string) {
		_, _ = loadFile(t, dir, body)
	})
}
