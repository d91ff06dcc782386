package update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/camgate/camgate/internal/redact"
)

// stallTimeout ends a transfer that delivers nothing for this long, so a
// stalled server cannot hold the update (and every later one) forever.
const stallTimeout = 60 * time.Second

// progressFunc is told how many bytes of total (-1: unknown) are on disk.
type progressFunc func(done, total int64)

// download fetches url into path with resume: a partial file from an
// earlier attempt is continued with a Range request when the server
// supports it, and started over when it does not. More than max bytes is
// ErrTooLarge; the partial file is kept for the next attempt unless it is
// unusable.
func download(parent context.Context, client *http.Client, url, path string, max int64, progress progressFunc) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("open download: %w", err)
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("open download: %w", err)
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	stalled := time.AfterFunc(stallTimeout, cancel)
	defer stalled.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("request %s: %w", redact.URL(url), err)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := client.Do(req)
	if err != nil {
		return have, fmt.Errorf("get %s: %s", redact.URL(url), redact.Error(err))
	}
	defer resp.Body.Close()
	total := int64(-1)
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			return have, fmt.Errorf("get %s: unusable Content-Range %q for a resume at %d", redact.URL(url), resp.Header.Get("Content-Range"), have)
		}
		total = size
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// The file is complete already, or the server's file changed:
		// the checks that follow tell which.
		if _, size, ok := parseContentRange(resp.Header.Get("Content-Range")); ok && size == have {
			progress(have, have)
			return have, nil
		}
		return have, restart(f, fmt.Errorf("get %s: range not satisfiable, download started over next time", redact.URL(url)))
	case resp.StatusCode == http.StatusOK:
		// No resume: start from the beginning.
		if err := restart(f, nil); err != nil {
			return 0, err
		}
		have = 0
		total = resp.ContentLength
	default:
		return have, fmt.Errorf("get %s: %s", redact.URL(url), resp.Status)
	}
	if total > max {
		_ = restart(f, nil)
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, total, max)
	}
	buf := make([]byte, 64<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			stalled.Reset(stallTimeout)
			if have+int64(n) > max {
				_ = restart(f, nil)
				return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return have, fmt.Errorf("write download: %w", err)
			}
			have += int64(n)
			progress(have, total)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			_ = f.Sync()
			if ctx.Err() != nil && parent.Err() == nil {
				return have, fmt.Errorf("get %s: stalled after %d bytes: nothing for %s", redact.URL(url), have, stallTimeout)
			}
			return have, fmt.Errorf("get %s: after %d bytes: %s", redact.URL(url), have, redact.Error(rerr))
		}
	}
	if total >= 0 && have != total {
		return have, fmt.Errorf("get %s: %d of %d bytes", redact.URL(url), have, total)
	}
	if err := f.Sync(); err != nil {
		return have, fmt.Errorf("write download: %w", err)
	}
	return have, nil
}

// restart empties the partial file and returns err.
func restart(f *os.File, err error) error {
	if terr := f.Truncate(0); terr != nil {
		return fmt.Errorf("truncate download: %w", terr)
	}
	if _, serr := f.Seek(0, io.SeekStart); serr != nil {
		return fmt.Errorf("truncate download: %w", serr)
	}
	return err
}

// parseContentRange reads "bytes START-END/SIZE" or "bytes */SIZE".
func parseContentRange(h string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if rng == "*" {
		return -1, size, true
	}
	s, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err = strconv.ParseInt(s, 10, 64)
	return start, size, err == nil
}

// progressLimiter turns byte counts into update.progress events: one per
// step of 10 percent at most once a second (the last one always), or
// every 10 s when the size is unknown.
type progressLimiter struct {
	emit    func(percent int, done, total int64)
	now     func() time.Time
	last    time.Time
	lastPct int
}

func (p *progressLimiter) update(done, total int64) {
	now := p.now()
	if total <= 0 {
		if now.Sub(p.last) >= 10*time.Second {
			p.last = now
			p.emit(-1, done, total)
		}
		return
	}
	pct := int(done * 100 / total)
	if pct == 100 && p.lastPct < 100 || pct/10 > p.lastPct/10 && now.Sub(p.last) >= time.Second {
		p.last, p.lastPct = now, pct
		p.emit(pct, done, total)
	}
}
