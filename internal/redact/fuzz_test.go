package redact

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// paramNames are the secret query parameter names the fuzz test embeds.
var paramNames = []string{
	"password", "pass", "pwd", "passwd", "psw", "token", "access_token", "key", "api_key",
	"apikey", "secret", "auth", "sig", "signature", "loginpas", "PassWord", "X-Amz-Signature",
}

// shapes embed a secret (and a user name) in a URL.
var shapes = []func(user, secret string, n int) string{
	func(user, secret string, _ int) string {
		return "rtsp://" + user + ":" + secret + "@cam.local:554/Streaming/Channels/101"
	},
	func(user, secret string, _ int) string { return "tcp://" + user + ":" + secret + "@broker:1883" },
	func(user, secret string, n int) string {
		return "rtsp://cam.local/live?user=" + user + "&" + paramNames[n%len(paramNames)] + "=" + secret + "&channel=1"
	},
	func(user, secret string, _ int) string {
		return "http://cam/cgi-bin/snapshot.cgi?loginuse=" + user + "&loginpas=" + secret
	},
	func(_, secret string, n int) string {
		return "rtsps://cam/x#" + paramNames[n%len(paramNames)] + "=" + secret
	},
	func(user, secret string, n int) string {
		return "rtsp://" + user + ":" + secret + "@cam/x?" + paramNames[n%len(paramNames)] + "=" + secret
	},
}

// FuzzRedact checks the one property that matters: no secret embedded in
// a URL survives redaction, whatever the secret, the user name and the
// text around the URL, in every form camgate prints: the URL alone, free
// text, the URL quoted (%q, as errors quote it), a url.Parse error of it,
// a JSON document holding it. Secrets that the surrounding text contains
// anyway, or that contain the mask, cannot be told apart and are skipped;
// so are, in free text, secrets holding "://" and user names holding a
// space, a quote or another byte that may begin a URL (see the package doc).
func FuzzRedact(f *testing.F) {
	for i, c := range cases {
		f.Add("s3cr3t", "admin", c.in, "", uint8(i))
	}
	for i, s := range []string{"p a/s\"<s", "pa/ss", "p#ss?x", "p@ss@", "100%zz", "\xff\xfe\x00sec", "&x=1;y", "a://b", " x://y"} {
		f.Add(s, "admin", "error: ", ": refused", uint8(i))
	}
	f.Fuzz(func(t *testing.T, secret, user, prefix, suffix string, shape uint8) {
		if secret == "" || strings.Contains(secret, "*") {
			return
		}
		mk := shapes[int(shape)%len(shapes)]
		n := int(shape) / len(shapes)
		in, tmpl := mk(user, secret, n), mk(user, Mask, n)

		check := func(form, out, tmpl, secret string) {
			t.Helper()
			if strings.Contains(tmpl, secret) {
				return // the secret is in the text around it too
			}
			if strings.Contains(out, secret) {
				t.Fatalf("%s: secret %q survived in %q", form, secret, out)
			}
		}
		quoted := strconv.Quote(secret)
		quoted = quoted[1 : len(quoted)-1]

		check("URL", URL(in), tmpl, secret)
		if strings.Contains(secret, "://") || strings.IndexFunc(user, func(r rune) bool { return r < 0x80 && startsURL(byte(r)) }) >= 0 {
			// Free text may read "x://" in a password, or a user name
			// with a space or a quote and a password beginning with "//",
			// as a second URL (see the package doc).
			return
		}
		check("String", String(prefix+in+suffix), prefix+tmpl+suffix, secret)
		check("String(%q)", String(prefix+strconv.Quote(in)+suffix), prefix+strconv.Quote(tmpl)+suffix, quoted)
		if _, err := url.Parse(in); err != nil {
			// The words of the message around the quoted URL, with the
			// pieces net/url quotes from the URL left out.
			var ue *url.Error
			if !errors.As(err, &ue) {
				t.Fatalf("url.Parse error %T", err)
			}
			words := regexp.MustCompile(`"[^"]*"`).ReplaceAllString(ue.Err.Error(), `""`)
			// net/url quotes the URL without its fragment.
			noFrag, _, _ := strings.Cut(tmpl, "#")
			around := ue.Op + " " + strconv.Quote(tmpl) + " " + strconv.Quote(noFrag) + ": " + words
			if _, terr := url.Parse(tmpl); terr != nil {
				around += " " + terr.Error() // pieces of the user name it quotes
			}
			check("url.Parse error", Error(err), around, secret)
			check("url.Parse error", Error(err), around, quoted)
		}
		doc, _ := json.Marshal(map[string]string{"error": prefix + in + suffix})
		tdoc, _ := json.Marshal(map[string]string{"error": prefix + tmpl + suffix})
		js, _ := json.Marshal(secret)
		check("JSON", string(JSON(doc)), string(tdoc), string(js[1:len(js)-1]))
	})
}
