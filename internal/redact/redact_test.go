package redact

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// cases feed TestRedact and the seeds of FuzzRedact. whole: the input is
// one URL (URL), else free text (String).
var cases = []struct {
	whole    bool
	in, want string
}{
	{true, "rtsp://10.0.0.64:554/s", "rtsp://10.0.0.64:554/s"},
	{true, "demo", "demo"},
	{true, "rtsp://admin:secret@10.0.0.64:554/s", "rtsp://admin:***@10.0.0.64:554/s"},
	{true, "rtsps://admin:p%40ss@cam/x?y=1", "rtsps://admin:***@cam/x?y=1"},
	{true, "rtsp://onlyuser@cam/x", "rtsp://onlyuser@cam/x"},
	{true, "rtsp://user:@cam/x", "rtsp://user:@cam/x"},
	{true, "ssl://u:p@broker:8883", "ssl://u:***@broker:8883"},
	{true, "u:p@broker:1883", "u:***@broker:1883"},
	// Passwords url.Parse refuses or splits elsewhere.
	{true, "rtsp://user:pa/ss@host/x", "rtsp://user:***@host/x"},
	{true, `rtsp://admin:p a/s"<s@10.0.0.5:554/x`, "rtsp://admin:***@10.0.0.5:554/x"},
	{true, "rtsp://u:p#1?x@cam/x", "rtsp://u:***@cam/x"},
	{true, "rtsp://u:p@ss@cam/x", "rtsp://u:***@cam/x"},
	{true, "rtsp://u:100%zz@cam", "rtsp://u:***@cam"},
	{true, "rtsp://u:\xff\xfe@cam/x", "rtsp://u:***@cam/x"},
	{true, "tcp://user:pa/ss@broker:1883", "tcp://user:***@broker:1883"},
	{true, "rtsp://u:a://b@host/x", "rtsp://u:***@host/x"},
	{true, "rtsp://u:x a://b@host/x", "rtsp://u:***@host/x"},
	// Query parameters.
	{true, "rtsp://cam/x?user=admin&password=s3cr3t", "rtsp://cam/x?user=admin&password=***"},
	{true, "rtsp://cam/x?password=s3cr3t&channel=1", "rtsp://cam/x?password=***&channel=1"},
	{true, "http://cam/cgi?loginuse=admin&loginpas=12345&res=0", "http://cam/cgi?loginuse=admin&loginpas=***&res=0"},
	{true, "rtsp://cam/x?usr=admin&pwd=a&b;c#d", "rtsp://cam/x?usr=admin&pwd=***"},
	{true, "rtsp://cam/x?Token=abc;channel=2", "rtsp://cam/x?Token=***;channel=2"},
	{true, "rtsp://cam:554/x?password=p@ss", "rtsp://cam:554/x?password=***"},
	{true, "rtsp://cam/x#access_token=abc", "rtsp://cam/x#access_token=***"},
	{true, "rtsp://cam/x?PassWord=a&psw=b&passwd=c&pass=d&key=e&api_key=f&apikey=g&secret=h&auth=i&sig=j&signature=k&channel=1",
		"rtsp://cam/x?PassWord=***&psw=***&passwd=***&pass=***&key=***&api_key=***&apikey=***&secret=***&auth=***&sig=***&signature=***&channel=1"},
	{true, "wss://b/mqtt?X-Amz-Credential=AKIA&X-Amz-Signature=ab&X-Amz-Security-Token=cd", "wss://b/mqtt?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***"},
	{true, "rtsp://cam/x?channel=1&subtype=0", "rtsp://cam/x?channel=1&subtype=0"},
	// Free text: errors and log lines.
	{false, `parse "rtsp://user:pa/ss@host/x": invalid port ":pa" after host`, `parse "rtsp://user:***@host/x": invalid port "***" after host`},
	{false, `parse "rtsp://u:ab%zz@h/x": invalid URL escape "%zz"`, `parse "rtsp://u:***@h/x": invalid URL escape "***"`},
	{false, `describe "rtsp://cam/x?user=admin&password=s3cr3t": 401 Unauthorized`, `describe "rtsp://cam/x?user=admin&password=***": 401 Unauthorized`},
	{false, `describe rtsp://cam/x?password=s3cr3t: timeout`, `describe rtsp://cam/x?password=***`},
	{false, `dial "rtsp://admin:secret@10.0.0.64:554/s": timeout; retry rtsp://u:hunter2@h/x`, `dial "rtsp://admin:***@10.0.0.64:554/s": timeout; retry rtsp://u:***@h/x`},
	{false, `dial "rtsp://admin:p a/s"<s@10.0.0.5/x": refused`, `dial "rtsp://admin:***@10.0.0.5/x": refused`},
	{false, "see rtsp://cam/x and mail admin@example.com", "see rtsp://cam/x and mail admin@example.com"},
	{false, "GET /snapshot.cgi?loginuse=admin&loginpas=xyz HTTP/1.1", "GET /snapshot.cgi?loginuse=admin&loginpas=***"},
	{false, "no secret: a=b c@d", "no secret: a=b c@d"},
}

func TestRedact(t *testing.T) {
	for _, c := range cases {
		f, name := String, "String"
		if c.whole {
			f, name = URL, "URL"
		}
		got := f(c.in)
		if got != c.want {
			t.Errorf("%s(%q)\n got %q\nwant %q", name, c.in, got, c.want)
		}
		if again := f(got); again != got {
			t.Errorf("%s not idempotent on %q: %q", name, got, again)
		}
	}
}

func TestError(t *testing.T) {
	if Error(nil) != "" || Err(nil) != nil {
		t.Fatal("nil error not kept nil")
	}
	base := fmt.Errorf("describe: %w", context.DeadlineExceeded)
	in := fmt.Errorf("dial rtsp://u:hunter2@h/x: %w", base)
	e := Err(in)
	if strings.Contains(e.Error(), "hunter2") || e.Error() != Error(in) {
		t.Fatalf("Err text %q", e.Error())
	}
	if !errors.Is(e, context.DeadlineExceeded) || !errors.Is(fmt.Errorf("op: %w", e), context.DeadlineExceeded) {
		t.Fatal("Err hides the wrapped error from errors.Is")
	}
	if Err(e) != e {
		t.Fatal("Err wraps twice")
	}

	// url.Parse quotes the whole URL in its errors, and pieces of it.
	for _, s := range []string{`rtsp://admin:p a/s"<s@10.0.0.5:554/x`, "rtsp://admin:pass/w@10.0.0.5:554/x"} {
		_, err := url.Parse(s)
		if err == nil {
			t.Fatalf("url.Parse accepted %q", s)
		}
		if got := Error(err); strings.Contains(got, "a/s") || strings.Contains(got, "pass") || !strings.Contains(got, "10.0.0.5") {
			t.Fatalf("Error(url.Parse error) = %q", got)
		}
	}
}

func TestJSON(t *testing.T) {
	in := `{"error":"describe \"rtsp://cam/x?password=s3cr3t\": 401","source":"rtsp://u:p/w@cam/x","n":1,"k":["a=b","mail a@b"]}`
	want := `{"error":"describe \"rtsp://cam/x?password=***\": 401","source":"rtsp://u:***@cam/x","n":1,"k":["a=b","mail a@b"]}`
	if got := string(JSON([]byte(in))); got != want {
		t.Fatalf("JSON\n got %s\nwant %s", got, want)
	}
	same := []byte(`{"a":"b","c":[1,2]}`)
	if got := JSON(same); &got[0] != &same[0] {
		t.Fatal("unchanged document copied")
	}
	if got := string(JSON([]byte(`{"a":"rtsp://u:pw@h`))); got != `{"a":"rtsp://u:***@h` {
		t.Fatalf("truncated JSON: %s", got)
	}
	// Escapes hide nothing: \u0040 is '@'.
	if got := string(JSON([]byte(`["rtsp://u:pw\u0040h"]`))); strings.Contains(got, "pw") {
		t.Fatalf("escaped '@' passed: %s", got)
	}
}

func TestEscapeUserinfo(t *testing.T) {
	for _, c := range []struct{ in, user, pass, host, path, query string }{
		{`rtsp://admin:p a/s"<s@10.0.0.5:554/x`, "admin", `p a/s"<s`, "10.0.0.5:554", "/x", ""},
		{"rtsp://u:pa?ss#x@cam/x?y=1", "u", "pa?ss#x", "cam", "/x", "y=1"},
		{"rtsp://u:100%@cam/x", "u", "100%", "cam", "/x", ""},
		{"rtsp://u:p%41ss/x@cam/x", "u", "pAss/x", "cam", "/x", ""},
		{"rtsp://admin:p%40ss@cam/x", "admin", "p@ss", "cam", "/x", ""},
		{"rtsp://u:p@ss/w@cam/x?password=a@b", "u", "p@ss/w", "cam", "/x", "password=a@b"},
	} {
		e := EscapeUserinfo(c.in)
		u, err := url.Parse(e)
		if err != nil {
			t.Errorf("EscapeUserinfo(%q) = %q: %v", c.in, e, err)
			continue
		}
		pass, _ := u.User.Password()
		if u.User.Username() != c.user || pass != c.pass || u.Host != c.host || u.Path != c.path || u.RawQuery != c.query {
			t.Errorf("EscapeUserinfo(%q) = %q: user %q pass %q host %q path %q query %q", c.in, e, u.User.Username(), pass, u.Host, u.Path, u.RawQuery)
		}
	}
	// What url.Parse accepts stays as it is, even where a person might
	// read it otherwise.
	for _, s := range []string{"rtsp://cam:554/live@main", "rtsp://cam/x", "demo"} {
		if e := EscapeUserinfo(s); e != s {
			t.Errorf("EscapeUserinfo(%q) = %q", s, e)
		}
	}
}

// The log writer runs JSON on every line: a typical line, a line with a
// redacted source and error, and a line with nothing to look at.
func BenchmarkJSON(b *testing.B) {
	for _, c := range []struct{ name, line string }{
		{"plain", `{"level":"info","component":"rtsp","path":"cam1","tracks":"H264","time":"2026-11-29T21:00:00Z","message":"source ready"}`},
		{"source", `{"level":"warn","component":"paths","path":"cam1","error":"describe \"rtsp://admin:s3cr3t@10.0.0.64:554/Streaming/Channels/101?user=admin&password=x\": dial tcp 10.0.0.64:554: connect: connection refused","time":"2026-11-29T21:00:00Z","message":"source failed, retrying"}`},
		{"quiet", `{"level":"debug","n":1,"time":"2026-11-29T21:00:00Z"}`},
	} {
		line := []byte(c.line)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				JSON(line)
			}
		})
	}
}
