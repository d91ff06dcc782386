// Package redact removes secrets from everything camgate prints: URL
// userinfo passwords and the values of query parameters whose names
// suggest a secret, in URLs and in free text that may contain URLs (error
// strings from gortsplib, paho and net/url, log lines, JSON documents).
//
// Every place that prints a camera source, a broker address or an error
// coming from a network peer goes through this package first; the agent's
// log writer and its MQTT and API documents pass whole outputs through it
// once more, so a forgotten call does not leak.
//
// The rules read text the way a person would, not the way url.Parse does,
// and prefer masking too much to leaking: for "rtsp://user:pa/ss@host/x"
// url.Parse fails (or finds host "user" and port "pa"), while the secret
// plainly is "pa/ss". So:
//   - userinfo: after "scheme://", everything up to the last '@' of that
//     URL is userinfo, whatever it contains (space, '/', '?', '#', quotes,
//     '%', bytes that are not UTF-8); the part after its first ':' is
//     masked. A URL's text ends where another URL begins (a "scheme://"
//     after a separator such as a space or a quote, unless the text so far
//     has a ':' and no '@' followed by a host, as a userinfo still open
//     has), or at the end of the text. A user name alone
//     ("rtsp://admin@cam") is kept. In free text, a password that itself
//     holds " x://", or a user name ending in a space with a password
//     beginning with "//", can thus be read as two URLs and be only partly
//     masked; URL reads its input as one URL and has no such limit.
//   - query values: name=value where name suggests a secret (the list is
//     in query.go) and follows '?', '&', ';', '#', a space, a quote or the
//     start of the text. The value may hold '&', ';', '#' and spaces: it
//     runs to the next "&name=" or ";name=", else to the end of the
//     text; inside a quoted string (as url.Parse errors quote the URL) to
//     the closing quote.
//   - quoted fragments: net/url errors quote pieces of the URL they
//     refused (`invalid port ":pa" after host`); a quoted piece of a
//     secret found in the same text is masked too.
//
// The masks are idempotent: redacting redacted text changes nothing,
// except that an unquoted query value followed by more text is masked to
// the end of the text. Code that writes a redacted URL into a message
// therefore quotes it (%q).
package redact

import (
	"sort"
	"strings"
)

// Mask replaces a secret.
const Mask = "***"

// URL returns u, one URL such as a camera source or a broker address, with
// its secrets masked. A u without "scheme://" is read as starting with its
// authority ("user:pass@host:1883"). The result is meant for display: it
// keeps u's own spelling apart from the masks.
func URL(u string) string { return redactText(u, true) }

// String masks the secrets of every URL and every secret-looking query
// parameter found in free text s.
func String(s string) string { return redactText(s, false) }

// Error returns the redacted text of err, or "" for nil.
func Error(err error) string {
	if err == nil {
		return ""
	}
	return String(err.Error())
}

// Err wraps err so that its text is redacted while errors.Is and
// errors.As still see err; nil stays nil. Use it to wrap an error from a
// peer that is returned onwards: fmt.Errorf("describe: %w", redact.Err(err)).
func Err(err error) error {
	if err == nil {
		return nil
	}
	if r, ok := err.(*redacted); ok {
		return r
	}
	return &redacted{err: err}
}

type redacted struct{ err error }

func (r *redacted) Error() string { return String(r.err.Error()) }
func (r *redacted) Unwrap() error { return r.err }

// span is the byte range [from, to) of a secret.
type span struct{ from, to int }

func redactText(s string, whole bool) string {
	if !strings.ContainsAny(s, "@=") {
		return s
	}
	secrets := queryValues(s, !whole)
	// Query values first: an '@' inside a masked value (password=p@ss)
	// does not end a userinfo.
	secrets = append(secrets, userinfos(s, whole, secrets)...)
	if len(secrets) == 0 {
		return s
	}
	secrets = append(secrets, quotedFragments(s, secrets)...)
	return mask(s, secrets)
}

// mask replaces every span (merged where they overlap or touch) by Mask.
func mask(s string, spans []span) string {
	sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for i := 0; i < len(spans); {
		from, to := spans[i].from, spans[i].to
		for i++; i < len(spans) && spans[i].from <= to; i++ {
			to = max(to, spans[i].to)
		}
		if from < at {
			from = at
		}
		b.WriteString(s[at:from])
		b.WriteString(Mask)
		at = to
	}
	b.WriteString(s[at:])
	return b.String()
}

func inSpans(i int, spans []span) bool {
	for _, sp := range spans {
		if i >= sp.from && i < sp.to {
			return true
		}
	}
	return false
}

// marker is one "scheme://" in the text; the scheme may be empty.
type marker struct {
	start int // first byte of the scheme
	after int // first byte after "://"
}

func isSchemeChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// startsURL tells whether a byte before a scheme separates it from the
// text before, so that a new URL begins there. Anything else (':', '/',
// '@', '%', ...) can be inside a userinfo: "user:a://b@host" is one URL.
func startsURL(c byte) bool {
	return isSpace(c) || strings.IndexByte("\"'`()<>[]{}=,;|", c) >= 0
}

func markers(s string) []marker {
	var out []marker
	for from := 0; ; {
		i := strings.Index(s[from:], "://")
		if i < 0 {
			return out
		}
		i += from
		start := i
		for start > from && isSchemeChar(s[start-1]) {
			start--
		}
		out = append(out, marker{start: start, after: i + 3})
		from = i + 3
	}
}

// lastAt is the index of the last '@' in s[from:to] outside skip, or -1.
func lastAt(s string, from, to int, skip []span) int {
	for i := to - 1; i >= from; i-- {
		if s[i] == '@' && !inSpans(i, skip) {
			return i
		}
	}
	return -1
}

// userinfos returns the password spans of every URL in s. With whole, s
// is one URL and may lack its "scheme://".
func userinfos(s string, whole bool, skip []span) []span {
	var rs []span
	if whole {
		rs = []span{wholeRegion(s)}
	} else {
		rs = regions(s, markers(s))
	}
	var out []span
	for _, r := range rs {
		if sp, ok := password(s, r, skip); ok {
			out = append(out, sp)
		}
	}
	return out
}

// wholeRegion is the text after the "scheme://" of s, one URL, or all of
// s when it does not begin with one.
func wholeRegion(s string) span {
	if ms := markers(s); len(ms) > 0 && ms[0].start == 0 {
		return span{ms[0].after, len(s)}
	}
	return span{0, len(s)}
}

// regions groups markers into URLs and returns, for each, the text from
// after its "://" to where the next URL begins.
func regions(s string, ms []marker) []span {
	if len(ms) == 0 {
		return nil
	}
	var out []span
	cur := ms[0].after
	for i := 1; i < len(ms); i++ {
		m := ms[i]
		if m.start < cur {
			continue
		}
		if m.start > 0 && !startsURL(s[m.start-1]) {
			continue // "user:a://b@host": inside the current URL
		}
		if seg := s[cur:m.start]; strings.Contains(seg, ":") && !closesUserinfo(seg) {
			// "rtsp://user:x a://b@host" reads as a password "x a://b" as
			// much as two URLs: take the wider one, which masks more.
			continue
		}
		out = append(out, span{cur, m.start})
		cur = m.after
	}
	return append(out, span{cur, len(s)})
}

// closesUserinfo tells whether seg, the text of a URL after "://", has
// an '@' followed by a host (and port) and the end of the authority: its
// userinfo is over.
func closesUserinfo(seg string) bool {
	for a := strings.IndexByte(seg, '@'); a >= 0; {
		i := a + 1
		for i < len(seg) && isHostChar(seg[i]) {
			i++
		}
		host := i > a+1
		if host && i < len(seg) && seg[i] == ':' {
			j := i + 1
			for j < len(seg) && '0' <= seg[j] && seg[j] <= '9' {
				j++
			}
			if j == i+1 {
				host = false
			}
			i = j
		}
		if host && (i == len(seg) || strings.IndexByte("/?#", seg[i]) >= 0 || startsURL(seg[i])) {
			return true
		}
		n := strings.IndexByte(seg[a+1:], '@')
		if n < 0 {
			return false
		}
		a += 1 + n
	}
	return false
}

func isHostChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '[' || c == ']'
}

// password finds the userinfo of the URL text r (after "://") and returns
// the span of what follows its first ':'.
func password(s string, r span, skip []span) (span, bool) {
	at := lastAt(s, r.from, r.to, skip)
	if at < 0 {
		return span{}, false
	}
	c := strings.IndexByte(s[r.from:at], ':')
	if c < 0 || r.from+c+1 == at {
		return span{}, false // a user name alone, or an empty password
	}
	return span{r.from + c + 1, at}, true
}

// quotedFragments masks quoted pieces of a found secret ("invalid port
// \":pa\" after host", "invalid URL escape \"%zz\""), and short quoted
// pieces that begin or end inside one. The text of a userinfo secret
// counts from its ':' since net/url quotes the port with it.
func quotedFragments(s string, secrets []span) []span {
	var texts []string
	for _, sp := range secrets {
		from := sp.from
		if from > 0 && s[from-1] == ':' {
			from--
		}
		texts = append(texts, s[from:sp.to])
	}
	var out []span
	open := -1
	for i := 0; i < len(s); i++ {
		if s[i] != '"' || escaped(s, i) {
			continue
		}
		if open < 0 {
			open = i
			continue
		}
		if frag := s[open+1 : i]; frag != "" {
			for _, t := range texts {
				// An escape is 3 bytes, up to 12 once quoted (\xff).
				if strings.Contains(t, frag) || len(frag) <= 12 && overlaps(frag, t) {
					out = append(out, span{open + 1, i})
					break
				}
			}
		}
		open = -1
	}
	return out
}

// overlaps tells whether frag begins with an end of t or ends with a start
// of t: net/url quotes an escape as '%' and the two bytes after it
// ("invalid URL escape \"%&c\"" for a password ending in '%').
func overlaps(frag, t string) bool {
	for k := 1; k < len(frag); k++ {
		if strings.HasSuffix(t, frag[:k]) || strings.HasPrefix(t, frag[len(frag)-k:]) {
			return true
		}
	}
	return false
}

// escaped tells whether s[i] is preceded by an odd number of backslashes.
func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}
