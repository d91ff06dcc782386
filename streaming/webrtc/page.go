package webrtc

import (
	_ "embed"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/camgate/camgate/streaming"
	"github.com/camgate/camgate/streaming/auth"
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
)

func writePage(w http.ResponseWriter, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// Scripts and styles are inline and nothing is loaded from elsewhere.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self' blob:; connect-src 'self'")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write([]byte(body))
}

func (s *Server) servePlayer(w http.ResponseWriter, _ *http.Request, name string) {
	writePage(w, renderPlayer(name))
}

// serveIndex lists the paths the client may read, and only those: a
// client that may read none gets the page of a box without paths.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	var paths []streaming.PathInfo
	if s.o.Lister != nil {
		for _, p := range s.o.Lister.Paths() {
			if !strings.HasPrefix(p.Name, "~") && p.Name != "all_others" && s.mayRead(r, p.Name) {
				paths = append(paths, p)
			}
		}
	}
	writePage(w, renderIndex(paths))
}

// mayRead tells whether the request may read path: anonymously first, so
// that credentials (a password hash to check) are tried only on paths
// that need them.
func (s *Server) mayRead(r *http.Request, path string) bool {
	if s.o.Auth == nil {
		return true
	}
	ip := auth.RemoteIP(r)
	if s.o.Auth.CheckContext(r.Context(), auth.Request{Action: auth.ActionRead, Path: path, IP: ip, Proto: "whep"}) == nil {
		return true
	}
	user, pass := auth.HTTPCredentials(r)
	return user != "" && s.o.Auth.CheckContext(r.Context(), auth.Request{Action: auth.ActionRead, Path: path, IP: ip, Proto: "whep", User: user, Pass: pass}) == nil
}

// renderPlayer fills the player page for the path name.
func renderPlayer(name string) string {
	return strings.ReplaceAll(playerPage, "{{path}}", html.EscapeString(name))
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
