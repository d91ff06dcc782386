// Package redact removes credentials from URLs and from free text that may
// contain URLs (error strings from RTSP libraries, log lines).
//
// Every place that prints a camera source, a broker address or an error
// coming from a network peer goes through this package first.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret.
const Mask = "***"

// userinfo matches "scheme://user:pass@" and "scheme://user@" in free text.
var userinfo = regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)([^/@\s"'<>]*)@`)

// URL returns u with the password of its userinfo replaced by Mask.
// Strings that do not parse as URLs are passed through String.
func URL(u string) string {
	if !strings.Contains(u, "@") {
		return u
	}
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return String(u)
	}
	if _, has := p.User.Password(); has {
		p.User = url.UserPassword(p.User.Username(), Mask)
	}
	s := p.String()
	// url.URL escapes the mask; keep it readable.
	return strings.Replace(s, url.QueryEscape(Mask), Mask, 1)
}

// String masks the password of every URL userinfo found in s.
func String(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	return userinfo.ReplaceAllStringFunc(s, func(m string) string {
		sub := userinfo.FindStringSubmatch(m)
		info := sub[2]
		if i := strings.IndexByte(info, ':'); i >= 0 {
			info = info[:i] + ":" + Mask
		}
		return sub[1] + info + "@"
	})
}

// Error returns the redacted text of err, or "" for nil.
func Error(err error) string {
	if err == nil {
		return ""
	}
	return String(err.Error())
}
