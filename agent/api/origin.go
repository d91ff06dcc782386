package api

import (
	"mime"
	"net"
	"net/http"
	"strings"
)

// The API must not be driven by a web page the box's browser happens to
// show. A cross-site page can send GET, HEAD and POST with a "simple"
// content type (text/plain, form encodings) without asking; everything
// else needs a CORS preflight, which the API never grants. DNS rebinding
// (a name of the attacker's resolving to 127.0.0.1) makes the page
// same-origin, but its requests then carry the attacker's name in Host.
// Hence, before credentials are even looked at:
//   - Host must be a name the API serves (hostPolicy), else 403;
//   - a present Origin must be the API's own (http://<Host>), else 403;
//   - POST, PUT and PATCH must be application/json, else 415. DELETE has
//     no body: without a Content-Type it passes (browsers send DELETE
//     cross-site only after a preflight), with another one it gets 415.

// hostPolicy decides which Host header values the API answers to.
type hostPolicy struct {
	names map[string]bool // lower case, no trailing dot; IPs in net.IP.String form
	anyIP bool            // the API listens on every address: any IP literal
}

// newHostPolicy allows loopback names and addresses, the host of the
// listen address, and extra names (api.allowedHosts). Listening on an
// unspecified address (":9997", "0.0.0.0:9997") allows any IP literal as
// Host: a page reached by IP is not another site's, so rebinding cannot
// use it.
func newHostPolicy(listen string, extra []string) hostPolicy {
	p := hostPolicy{names: map[string]bool{"localhost": true}}
	if host, _, err := net.SplitHostPort(listen); err == nil {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			p.anyIP = true
		} else {
			p.names[canonicalHost(host)] = true
		}
	}
	for _, h := range extra {
		p.names[canonicalHost(h)] = true
	}
	return p
}

func canonicalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if ip := net.ParseIP(h); ip != nil {
		return ip.String()
	}
	return h
}

// allows tells whether a Host header value (host or host:port) is served.
// An empty Host (HTTP/1.0 tools) passes: browsers always send one.
func (p hostPolicy) allows(hostport string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = canonicalHost(host)
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback() || p.anyIP || p.names[host]
	}
	return p.names[host]
}

// sameSite refuses requests a foreign page could have made; it answers
// and returns false for those.
func (s *Server) sameSite(w http.ResponseWriter, r *http.Request) bool {
	if !s.hosts.allows(r.Host) {
		s.refusals.Warn().Str("host", r.Host).Str("remote", r.RemoteAddr).Msg("api request for a foreign host refused")
		http.Error(w, "unknown host", http.StatusForbidden)
		return false
	}
	if o, ok := r.Header["Origin"]; ok && (len(o) != 1 || !strings.EqualFold(o[0], "http://"+r.Host)) {
		s.refusals.Warn().Strs("origin", o).Str("remote", r.RemoteAddr).Msg("api request from a foreign origin refused")
		http.Error(w, "foreign origin", http.StatusForbidden)
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	ct, ok := r.Header["Content-Type"]
	if !ok && r.Method == http.MethodDelete {
		return true
	}
	if mt, _, err := mime.ParseMediaType(strings.Join(ct, ",")); err != nil || mt != "application/json" {
		http.Error(w, "changes need Content-Type: application/json", http.StatusUnsupportedMediaType)
		return false
	}
	return true
}
