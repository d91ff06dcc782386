package record

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ext is appended to every segment's name.
const ext = ".mp4"

// pattern is a parsed recordPath: literal text and the fields % brings in.
type pattern struct {
	raw    string
	tokens []token
}

// token is literal text (field 0) or a field.
type token struct {
	field byte // 0, 'p' (%path), 'Y', 'm', 'd', 'H', 'M', 'S', 'f', 's'
	text  string
}

// parsePattern checks a recordPath. It must name the path and the start
// time down to the microsecond: the playback server finds a path's
// segments, and their start, from their names alone.
func parsePattern(raw string) (*pattern, error) {
	p := &pattern{raw: raw}
	seen := map[byte]bool{}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.tokens = append(p.tokens, token{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '%' {
			lit.WriteByte(c)
			continue
		}
		if strings.HasPrefix(raw[i:], "%path") {
			flush()
			p.tokens = append(p.tokens, token{field: 'p'})
			seen['p'] = true
			i += len("%path") - 1
			continue
		}
		if i+1 >= len(raw) || !strings.ContainsRune("YmdHMSfs", rune(raw[i+1])) {
			return nil, fmt.Errorf("%q: unknown field at %q (use %%path %%Y %%m %%d %%H %%M %%S %%f %%s)", raw, raw[i:min(i+2, len(raw))])
		}
		flush()
		p.tokens = append(p.tokens, token{field: raw[i+1]})
		seen[raw[i+1]] = true
		i++
	}
	flush()
	if !seen['p'] {
		return nil, fmt.Errorf("%q: %%path is missing (segments of different paths would mix)", raw)
	}
	if !seen['f'] {
		return nil, fmt.Errorf("%q: %%f is missing (segment names must hold the microseconds of their start)", raw)
	}
	if !seen['s'] && !(seen['Y'] && seen['m'] && seen['d'] && seen['H'] && seen['M'] && seen['S']) {
		return nil, fmt.Errorf("%q: the start time is incomplete: use %%Y %%m %%d %%H %%M %%S, or %%s", raw)
	}
	for _, seg := range strings.FieldsFunc(raw, func(r rune) bool { return r == '/' || r == '\\' }) {
		if seg == ".." {
			return nil, fmt.Errorf("%q: '..' is not allowed", raw)
		}
	}
	return p, nil
}

// under returns the pattern made absolute under base when relative, and
// cleaned ("./" and "//" removed) so that file names compare as found on
// disk.
func (p *pattern) under(base string) *pattern {
	raw := filepath.FromSlash(p.raw)
	if !filepath.IsAbs(raw) && base != "" {
		raw = filepath.Join(base, raw)
	} else {
		raw = filepath.Clean(raw)
	}
	q, err := parsePattern(filepath.ToSlash(raw))
	if err != nil {
		return p // cleaning keeps every field: not reached
	}
	return q
}

// file is the segment file of path name starting at t.
func (p *pattern) file(name string, t time.Time) string {
	t = t.UTC()
	var b strings.Builder
	for _, tk := range p.tokens {
		switch tk.field {
		case 0:
			b.WriteString(tk.text)
		case 'p':
			b.WriteString(name)
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'f':
			fmt.Fprintf(&b, "%06d", t.Nanosecond()/1000)
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		}
	}
	b.WriteString(ext)
	return filepath.FromSlash(b.String())
}

// root is the directory holding every segment of the pattern: its text up
// to the first field, cut back to a directory.
func (p *pattern) root() string {
	var lit string
	if len(p.tokens) > 0 && p.tokens[0].field == 0 {
		lit = p.tokens[0].text
	}
	i := strings.LastIndex(lit, "/")
	if i < 0 {
		return "."
	}
	if i == 0 {
		return "/"
	}
	return filepath.FromSlash(lit[:i])
}

// matcher matches the files of the pattern.
type matcher struct {
	re     *regexp.Regexp
	fields []byte // the field of each capture group
}

func (p *pattern) matcher() *matcher {
	m := &matcher{}
	var b strings.Builder
	b.WriteString("^")
	for _, tk := range p.tokens {
		switch tk.field {
		case 0:
			b.WriteString(regexp.QuoteMeta(tk.text))
			continue
		case 'p':
			b.WriteString(`(.+)`)
		case 'Y':
			b.WriteString(`(\d{4})`)
		case 'f':
			b.WriteString(`(\d{6})`)
		case 's':
			b.WriteString(`(\d+)`)
		default:
			b.WriteString(`(\d{2})`)
		}
		m.fields = append(m.fields, tk.field)
	}
	b.WriteString(regexp.QuoteMeta(ext) + "$")
	m.re = regexp.MustCompile(b.String())
	return m
}

var errNoMatch = errors.New("name does not match the pattern")

// parse returns the path name and start time a segment file's name holds.
func (m *matcher) parse(file string) (name string, start time.Time, err error) {
	sm := m.re.FindStringSubmatch(filepath.ToSlash(file))
	if sm == nil {
		return "", time.Time{}, errNoMatch
	}
	var y, mo, d, h, mi, s, us int
	var unix int64 = -1
	mo, d = 1, 1
	for i, f := range m.fields {
		v := sm[i+1]
		if f == 'p' {
			if name != "" && name != v {
				return "", time.Time{}, errNoMatch
			}
			name = v
			continue
		}
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil {
			return "", time.Time{}, errNoMatch
		}
		switch f {
		case 'Y':
			y = int(n)
		case 'm':
			mo = int(n)
		case 'd':
			d = int(n)
		case 'H':
			h = int(n)
		case 'M':
			mi = int(n)
		case 'S':
			s = int(n)
		case 'f':
			us = int(n)
		case 's':
			unix = n
		}
	}
	if unix >= 0 {
		start = time.Unix(unix, int64(us)*1000).UTC()
	} else {
		start = time.Date(y, time.Month(mo), d, h, mi, s, us*1000, time.UTC)
	}
	return name, start, nil
}
