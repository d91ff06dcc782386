package webrtc

import (
	_ "embed"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
)

// The pages are filled by plain string replacement of one placeholder
// each, every value HTML-escaped. html/template would do the same for a
// few placeholders, but linking it (through text/template's reflection on
// method names) keeps every exported method of the program in the binary:
// 2.9 MB more executable and about 2 MB more resident memory at rest.
//
// camgate.js, the players both pages share (WebRTC with the LL-HLS
// fallback), is inlined into each: a page is one request and needs
// nothing from anywhere else.
var (
	//go:embed page/player.html
	playerPage string
	//go:embed page/index.html
	indexPage string
	//go:embed page/camgate.js
	camgateJS string
	//go:embed page/timeline.html
	timelinePart string
)

// pageConf is what the pages need to know of the box's other listeners:
// the HLS and RTSP ports, and the playback listener's origin as the
// browser reaches it ("" without playback).
type pageConf struct {
	hlsPort, rtspPort int
	playback          string
}

func (s *Server) pageConf(r *http.Request) pageConf {
	return pageConf{hlsPort: s.o.HLSPort, rtspPort: s.o.RTSPPort, playback: playbackOrigin(s.o.PlaybackAddress, r.Host)}
}

// fill replaces the placeholders every page has.
func (c pageConf) fill(page string) string {
	page = strings.Replace(page, "{{camgate.js}}", camgateJS, 1)
	page = strings.ReplaceAll(page, "{{hlsPort}}", strconv.Itoa(c.hlsPort))
	return strings.ReplaceAll(page, "{{rtspPort}}", strconv.Itoa(c.rtspPort))
}

func (s *Server) writePage(w http.ResponseWriter, body string, c pageConf) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// Scripts and styles are inline and nothing is loaded from elsewhere,
	// except the LL-HLS fallback from the HLS port of whatever host the
	// browser used, and the recordings from the playback listener.
	other := ""
	if p := c.hlsPort; p > 0 {
		other = " http://*:" + strconv.Itoa(p)
	}
	if c.playback != "" {
		other += " " + c.playback
	}
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self' blob:"+other+"; connect-src 'self'"+other)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}

func (s *Server) servePlayer(w http.ResponseWriter, r *http.Request, name string) {
	c := s.pageConf(r)
	s.writePage(w, renderPlayer(name, c), c)
}

// playbackOrigin is where the page finds the playback listener: its own
// host name (the one the browser used) unless the listener is bound to
// one address, and the listener's port. "" when there is none.
func playbackOrigin(addr, reqHost string) string {
	host, port, err := net.SplitHostPort(addr)
	if addr == "" || err != nil || port == "" || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = reqHost
		if h, _, err := net.SplitHostPort(reqHost); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
	}
	if host == "" || strings.ContainsAny(host, " /\\\"'<>;") {
		return ""
	}
	return "http://" + net.JoinHostPort(host, port)
}

// serveIndex lists the paths the client may read, and only those: a
// client that may read none gets the page of a box without paths.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	c := s.pageConf(r)
	s.writePage(w, renderIndex(s.readablePaths(r), c), c)
}

// listing decides, for one request, what it may read: anonymously first,
// so that credentials (a password hash to check) are tried only on paths
// that need them, and no more once they proved wrong.
type listing struct {
	s        *Server
	r        *http.Request
	credsBad bool
}

func (l *listing) mayRead(path string) bool {
	if l.s.o.Auth == nil {
		return true
	}
	req := auth.HTTPRequest(l.r, auth.ActionRead, path, "whep")
	if l.credsBad {
		req.User, req.Pass = "", ""
	}
	ok, err := l.s.o.Auth.Permits(l.r.Context(), req)
	if err != nil {
		l.credsBad = true
	}
	return ok
}

// renderPlayer fills the player page for the path name, with the
// recordings' timeline when there is a playback listener.
func renderPlayer(name string, c pageConf) string {
	tl := ""
	if c.playback != "" {
		tl = strings.ReplaceAll(timelinePart, "{{playback}}", html.EscapeString(c.playback))
	}
	page := strings.Replace(playerPage, "{{timeline}}", tl, 1)
	return c.fill(strings.ReplaceAll(page, "{{path}}", html.EscapeString(name)))
}

// renderIndex fills the console with a table of paths, which its script
// replaces with the camera wall (the table is what a browser without
// scripts shows).
func renderIndex(paths []streaming.PathInfo, c pageConf) string {
	var b strings.Builder
	if len(paths) == 0 {
		b.WriteString("<p>No paths.</p>")
	} else {
		b.WriteString("<table>\n<tr><th>path</th><th>state</th><th>readers</th><th>tracks</th></tr>\n")
		for _, p := range paths {
			name := html.EscapeString(p.Name)
			state := p.State.String()
			href := html.EscapeString((&url.URL{Path: "/" + p.Name}).EscapedPath())
			b.WriteString(`<tr><td><a href="` + href + `">` + name + `</a></td><td class="` + state + `">` + state)
			if p.LastError != "" {
				b.WriteString(" — " + html.EscapeString(p.LastError))
			}
			b.WriteString("</td><td>" + strconv.Itoa(p.Readers) + "</td><td>" + html.EscapeString(p.Tracks) + "</td></tr>\n")
		}
		b.WriteString("</table>")
	}
	return c.fill(strings.Replace(indexPage, "{{paths}}", b.String(), 1))
}
