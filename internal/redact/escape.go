package redact

import (
	"net/url"
	"strings"
)

// EscapeUserinfo makes a URL whose userinfo url.Parse misreads parseable,
// reading the userinfo as URL does when it masks it: up to the last '@'.
// "rtsp://admin:p a/s\"<s@cam/x" becomes "rtsp://admin:p%20a%2Fs%22%3Cs@cam/x",
// so cameras work with the password as the vendor's web page took it.
// Bytes that may stand in a userinfo and valid %XX escapes are kept.
//
// A URL is changed only when url.Parse refuses it, or when url.Parse
// found a userinfo and another '@' follows ("rtsp://u:p@ss/w@cam/x" is
// not host "ss"). Otherwise it is returned as is, so configs written for
// MediaMTX (which percent-encode) mean the same here, and
// "rtsp://cam:554/live@main" stays a path with an '@'.
func EscapeUserinfo(u string) string {
	r := wholeRegion(u)
	if r.from == 0 {
		return u // no "scheme://"
	}
	skip := queryValues(u, false)
	at := lastAt(u, r.from, r.to, skip)
	if at < 0 {
		return u
	}
	after := r.from
	if _, err := url.Parse(u); err == nil {
		auth := strings.IndexAny(u[after:], "/?#")
		if auth < 0 || after+auth > at || !strings.Contains(u[after:after+auth], "@") {
			return u
		}
	}
	var b strings.Builder
	b.WriteString(u[:after])
	info := u[after:at]
	for i := 0; i < len(info); i++ {
		c := info[i]
		switch {
		case c == '%' && i+2 < len(info) && ishex(info[i+1]) && ishex(info[i+2]):
			b.WriteByte(c)
		case userinfoByte(c):
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
		}
	}
	b.WriteString(u[at:])
	return b.String()
}

// userinfoByte tells whether url.Parse takes c unescaped in a userinfo.
func userinfoByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-._~!$&'()*+,;=:", c) >= 0
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
