package webrtc

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strings"

	"github.com/camgate/camgate/streaming"
)

//go:embed page/*.html
var pageFS embed.FS

var (
	playerTmpl = template.Must(template.ParseFS(pageFS, "page/player.html"))
	indexTmpl  = template.Must(template.ParseFS(pageFS, "page/index.html"))
)

func renderPage(w http.ResponseWriter, t *template.Template, data any) {
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		httpError(w, http.StatusInternalServerError, "render page")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// Scripts and styles are inline and nothing is loaded from elsewhere.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; media-src 'self' blob:; connect-src 'self'")
	_, _ = w.Write(b.Bytes())
}

func (s *Server) servePlayer(w http.ResponseWriter, _ *http.Request, name string) {
	renderPage(w, playerTmpl, struct{ Path string }{name})
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
	renderPage(w, indexTmpl, struct{ Paths []streaming.PathInfo }{paths})
}
