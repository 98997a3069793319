package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Errors reported by this package; compare with errors.Is.
var (
	// ErrBadMeta means a sidecar is missing, does not parse, or lacks a key or bucket.
	ErrBadMeta = errors.New("segment: bad sidecar")
	// ErrCorrupt means a segment's data does not decode as far as it was written.
	ErrCorrupt = errors.New("segment: corrupt data")
	// ErrClosed is returned by writes to a closed Writer or Spool.
	ErrClosed = errors.New("segment: closed")
	// ErrAbandoned wraps a write error that made a Writer give up its
	// segment; the records it had accepted are accounted for by the janitor.
	ErrAbandoned = errors.New("segment: segment abandoned after a write error")
)

// QuarantineDir is the folder under the spool root where files that cannot be
// used are moved. Nothing in it is ever deleted or uploaded by s3logs.
const QuarantineDir = "_quarantine"

// isContainerDir reports whether a spool root entry is a container folder.
func isContainerDir(e os.DirEntry) bool {
	n := e.Name()
	return e.IsDir() && n != "" && n[0] != '_' && n[0] != '.'
}

// ScanSealed lists the sealed segments under the spool root, oldest first
// (by first record time, then sequence). A data file whose sidecar is missing
// or unreadable is moved to the quarantine folder and reported in the joined
// error; the other segments are still returned. It is safe to call while
// Writers are active: it only lists sealed files, which are never modified.
func ScanSealed(root string) ([]Sealed, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("segment: scan %s: %w", root, err)
	}
	var out []Sealed
	var errs []error
	for _, e := range entries {
		if !isContainerDir(e) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("segment: scan %s: %w", dir, err))
			continue
		}
		for _, f := range files {
			name := f.Name()
			if f.IsDir() || !strings.HasSuffix(name, DataSuffix) {
				continue
			}
			s := Sealed{Dir: dir, Name: name}
			m, err := readMeta(s.MetaPath())
			if err != nil {
				if qerr := quarantine(root, dir, name, name+MetaSuffix); qerr != nil {
					err = errors.Join(err, qerr)
				}
				errs = append(errs, fmt.Errorf("segment: sealed %s has no usable sidecar, quarantined: %w", s.Path(), err))
				continue
			}
			s.Meta = m
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Meta, out[j].Meta
		if !a.FirstTime.Equal(b.FirstTime) {
			return a.FirstTime.Before(b.FirstTime)
		}
		return a.Seq < b.Seq
	})
	return out, errors.Join(errs...)
}

// quarantine moves the named files of dir into root/_quarantine/<container>/.
// Files that do not exist are skipped.
func quarantine(root, dir string, names ...string) error {
	qdir := filepath.Join(root, QuarantineDir, filepath.Base(dir))
	if err := os.MkdirAll(qdir, dirPerm); err != nil {
		return fmt.Errorf("segment: quarantine: %w", err)
	}
	var errs []error
	for _, n := range names {
		err := os.Rename(filepath.Join(dir, n), filepath.Join(qdir, n))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("segment: quarantine %s: %w", n, err))
		}
	}
	if err := syncDir(qdir); err != nil {
		errs = append(errs, err)
	}
	if err := syncDir(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
