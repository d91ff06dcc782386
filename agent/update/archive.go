package update

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// extractBinary writes the executable named exe from the file at src to
// dst: src is the binary itself, a .tar.gz or a .zip release archive
// (camgate_<version>_<os>_<arch>/camgate[.exe]). It reports whether src
// was an archive.
func extractBinary(src, exe, dst string, max int64) (archive bool, err error) {
	f, err := os.Open(src)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head, _ := bufio.NewReader(f).Peek(4)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return true, extractTarGz(f, exe, dst, max)
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		st, err := f.Stat()
		if err != nil {
			return true, err
		}
		return true, extractZip(f, st.Size(), exe, dst, max)
	}
	return false, copyFile(f, dst, max)
}

func extractTarGz(r io.Reader, exe, dst string, max int64) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("archive holds no %s", exe)
		}
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		if h.Typeflag == tar.TypeReg && path.Base(h.Name) == exe {
			return copyFile(tr, dst, max)
		}
	}
}

func extractZip(r io.ReaderAt, size int64, exe, dst string, max int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	for _, zf := range zr.File {
		if !zf.FileInfo().Mode().IsRegular() || path.Base(zf.Name) != exe {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return fmt.Errorf("archive: %w", err)
		}
		defer rc.Close()
		return copyFile(rc, dst, max)
	}
	return fmt.Errorf("archive holds no %s", exe)
}

// copyFile writes r to dst (mode 0755) and syncs it, at most max bytes.
func copyFile(r io.Reader, dst string, max int64) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, max+1))
	if err == nil && n > max {
		err = fmt.Errorf("%w: binary over %d bytes", ErrTooLarge, max)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(dst)
	}
	return err
}
