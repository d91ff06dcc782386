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
)

// The pages are filled by plain string replacement of one placeholder
// each, every value HTML-escaped. html/template would do the same for two
// placeholders, but linking it (through text/template's reflection on
// method names) keeps every exported method of the program in the binary:
// 2.9 MB more executable and about 2 MB more resident memory at rest.
var (
	//go:embed page/player.html
	playerPage string
	//go:embed page/index.html
	indexPage string
	//go:embed page/timeline.html
	timelinePart string
)

// writePage serves a page; other is an origin the page may also fetch
// from and play media of (the playback listener), or "".
func writePage(w http.ResponseWriter, body, other string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// Scripts and styles are inline and nothing is loaded from elsewhere
	// but the recordings.
	if other != "" {
		other = " " + other
	}
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self' blob:"+other+"; connect-src 'self'"+other)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}

func (s *Server) servePlayer(w http.ResponseWriter, r *http.Request, name string) {
	origin := playbackOrigin(s.o.PlaybackAddress, r.Host)
	writePage(w, renderPlayer(name, origin), origin)
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

func (s *Server) serveIndex(w http.ResponseWriter, _ *http.Request) {
	var paths []streaming.PathInfo
	if s.o.Lister != nil {
		for _, p := range s.o.Lister.Paths() {
			if !strings.HasPrefix(p.Name, "~") && p.Name != "all_others" {
				paths = append(paths, p)
			}
		}
	}
	writePage(w, renderIndex(paths), "")
}

// renderPlayer fills the player page for the path name, with the
// recordings' timeline when playback is the playback listener's origin.
func renderPlayer(name, playback string) string {
	tl := ""
	if playback != "" {
		tl = strings.ReplaceAll(timelinePart, "{{playback}}", html.EscapeString(playback))
	}
	page := strings.Replace(playerPage, "{{timeline}}", tl, 1)
	return strings.ReplaceAll(page, "{{path}}", html.EscapeString(name))
}

// renderIndex fills the index page with a table of paths.
func renderIndex(paths []streaming.PathInfo) string {
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
	return strings.Replace(indexPage, "{{paths}}", b.String(), 1)
}
