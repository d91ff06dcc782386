package auth

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// HTTPCredentials reads HTTP Basic or Bearer credentials; the header is
// never logged. A bearer token is "user:pass", plain or base64, as for RTSP.
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
