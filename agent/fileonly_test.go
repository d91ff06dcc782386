package agent

import (
	"strings"
	"testing"

	"github.com/camgate/camgate/uplink"
)

// The runOn* keys start commands on the box: only the config file sets
// them. Every fleet command that carries a path conf, and the local API
// (which goes through the same commands), refuses them by name.
func TestRunOnKeysRefusedOverFleetAndAPI(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ cmd, args, key string }{
		{"paths.add", `{"name":"cam9","conf":{"source":"publisher","runOnDemand":"ffmpeg -f lavfi -i testsrc -f rtsp rtsp://localhost:$RTSP_PORT/$MTX_PATH"}}`, "args.conf.runOnDemand"},
		{"paths.add", `{"name":"cam9","conf":{"source":"publisher","runOnInit":"sh -c 'rm -rf /'"}}`, "args.conf.runOnInit"},
		{"paths.update", `{"name":"cam9","conf":{"source":"publisher","runOnDemandRestart":true}}`, "args.conf.runOnDemandRestart"},
		{"paths.set", `{"paths":{"cam9":{"source":"publisher","runOnDemandStartTimeout":"5s"}}}`, "args.paths.cam9.runOnDemandStartTimeout"},
		{"paths.set", `{"paths":{"cam9":{"source":"publisher","runOnInitRestart":false}}}`, "args.paths.cam9.runOnInitRestart"},
	} {
		r := h.cmd(t, tc.cmd, tc.args)
		wantCode(t, r, uplink.CodeBadRequest)
		if !strings.HasPrefix(r.Error.Message, tc.key+": ") || !strings.Contains(r.Error.Message, "config file only") {
			t.Errorf("%s: message %q does not name %s", tc.cmd, r.Error.Message, tc.key)
		}
	}
	if n := h.paths.count("add") + h.paths.count("set"); n != 0 {
		t.Fatalf("%d path changes made", n)
	}
	// The local API calls the same table.
	_, werr := h.link.disp.Call(t.Context(), "paths.add", []byte(`{"name":"cam9","conf":{"source":"publisher","runOnDemand":"x"}}`))
	if werr == nil || werr.Code != uplink.CodeBadRequest || !strings.Contains(werr.Message, "args.conf.runOnDemand") {
		t.Fatalf("API: %+v", werr)
	}
}

// Command replies name camgate's keys, not Go's types.
func TestArgErrorsNameCamgateKeys(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ cmd, args, want string }{
		{"paths.add", `{"name":"cam9","conf":{"source":"demo","bogus":1}}`, `args.conf.bogus: unknown key (known: source, sourceOnDemand,`},
		{"paths.add", `{"name":"cam9","cnf":{}}`, `args.cnf: unknown key (known: name, conf)`},
		{"paths.add", `{"name":"cam9","conf":{"source":"demo","maxReaders":"two"}}`, `args.conf.maxReaders: want a whole number, got a string`},
		{"paths.add", `{"name":"cam9","conf":{"source":"demo","sourceOnDemand":"yes"}}`, `args.conf.sourceOnDemand: want true or false, got a string`},
		{"paths.add", `{"name":"cam9","conf":{"source":"demo","readTimeout":"soon"}}`, `args.conf.readTimeout: invalid duration "soon"`},
		{"paths.set", `{"paths":{"cam9":{"source":"demo","readTimeout":10}}}`, `args.paths.cam9.readTimeout: invalid duration`},
		{"paths.set", `{"paths":[]}`, `args.paths: want an object, got a list`},
		{"path.restart", `{"name":"cam1","force":true}`, `args.force: unknown key (known: name)`},
	} {
		r := h.cmd(t, tc.cmd, tc.args)
		wantCode(t, r, uplink.CodeBadRequest)
		if !strings.HasPrefix(r.Error.Message, tc.want) {
			t.Errorf("%s %s: message %q, want prefix %q", tc.cmd, tc.args, r.Error.Message, tc.want)
		}
		for _, goism := range []string{"Go struct", "conf.PathConf", "pathArgs", "json:", "of type"} {
			if strings.Contains(r.Error.Message, goism) {
				t.Errorf("%s: message %q says %q", tc.cmd, r.Error.Message, goism)
			}
		}
	}
}
