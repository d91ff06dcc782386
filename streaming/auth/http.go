package auth

import (
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// HTTP servers (WHEP and the player pages, LL-HLS) read credentials and
// answer refusals the same way; the rules live here, once.

// HTTPRequest is the Request an HTTP request makes for action on path:
// the client's address and its Basic or Bearer credentials. proto names
// the protocol in denial reports (whep, hls).
func HTTPRequest(r *http.Request, action Action, path, proto string) Request {
	user, pass := HTTPCredentials(r)
	return Request{Action: action, Path: path, IP: RemoteIP(r), Proto: proto, User: user, Pass: pass}
}

// HTTPCredentials reads HTTP Basic or Bearer credentials; the header is
// never logged. A bearer token is "user:pass", plain or base64, as for
// RTSP.
func HTTPCredentials(r *http.Request) (user, pass string) {
	a := r.Header.Get("Authorization")
	scheme, rest, ok := strings.Cut(a, " ")
	if !ok {
		return "", ""
	}
	rest = strings.TrimSpace(rest)
	switch strings.ToLower(scheme) {
	case "basic":
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil {
			user, pass, _ = strings.Cut(string(b), ":")
		}
	case "bearer":
		if u, p, ok := strings.Cut(rest, ":"); ok {
			return u, p
		}
		if b, err := base64.StdEncoding.DecodeString(rest); err == nil {
			user, pass, _ = strings.Cut(string(b), ":")
		}
	}
	return user, pass
}

// RemoteIP is the address an HTTP request came from; nil when unknown.
func RemoteIP(r *http.Request) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}

// WriteHTTPRefusal answers a request CheckContext refused with err:
// ErrThrottled 429 and ErrBusy 503, both with Retry-After; anything else
// 401 with a Bearer challenge, and a Basic one unless the request says it
// comes from a page's script (X-Requested-With): such a page asks for
// credentials itself, and a Basic challenge would make the browser pop
// its own dialog over it. Players that fetch by themselves (VLC, Safari's
// native HLS) get the Basic challenge and ask the user.
func WriteHTTPRefusal(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrThrottled):
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds(err)))
		writeText(w, http.StatusTooManyRequests, "too many failed logins from this address, retry later")
		return
	case errors.Is(err, ErrBusy):
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds(err)))
		writeText(w, http.StatusServiceUnavailable, "busy checking logins, retry later")
		return
	}
	if r.Header.Get("X-Requested-With") == "" {
		w.Header().Add("WWW-Authenticate", `Basic realm="camgate"`)
	}
	w.Header().Add("WWW-Authenticate", `Bearer realm="camgate"`)
	writeText(w, http.StatusUnauthorized, "authentication required")
}

func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, msg+"\n")
}
