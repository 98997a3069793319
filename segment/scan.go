package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
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

// isContainerDir reports whether a spool root entry is a container folder.
func isContainerDir(e os.DirEntry) bool {
	n := e.Name()
	return e.IsDir() && n != "" && n[0] != '_' && n[0] != '.'
}

// eachContainerDir calls fn with every container folder under root and its
// entries. A folder removed meanwhile (pruned) is skipped; one that cannot
// be read is reported in the joined error and the walk goes on. An error
// reading root itself is returned as it is, before any call.
func eachContainerDir(root string, fn func(dir string, files []os.DirEntry)) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !isContainerDir(e) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		files, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("segment: read %s: %w", dir, err))
			continue
		}
		fn(dir, files)
	}
	return errors.Join(errs...)
}

// ScanSealed lists the sealed segments under the spool root, oldest first
// (by first record time, then sequence). It is safe to call while Writers
// are active and while segments are removed: it only lists sealed files,
// which are never modified, and skips those removed while it looks.
//
// A segment whose sidecar exists but does not parse or lacks its key or
// bucket, while its data file still exists, is moved to the quarantine
// folder and reported in the joined error (wrapping ErrBadMeta). A segment
// that cannot be listed for another reason (its sidecar missing, or an
// error reading it such as EMFILE or EIO) is reported and left in place
// for the next scan. The other segments are returned either way.
//
// Segments listed by the package-level ScanSealed do not tell the Spool
// when they are removed; the janitor notices at its next walk (within a
// minute). Spool.ScanSealed's do.
func ScanSealed(root string) ([]Sealed, error) {
	return scanSealed(root, time.Now(), nil)
}

// ScanSealed is the package-level ScanSealed for this Spool's root, whose
// segments tell the Spool's janitor when they are removed.
func (s *Spool) ScanSealed() ([]Sealed, error) {
	return scanSealed(s.root, s.now(), &s.acct)
}

// scanSealed is ScanSealed; the segments carry acct, and now is the time
// of any quarantine.
func scanSealed(root string, now time.Time, acct *ledger) ([]Sealed, error) {
	if _, err := os.Stat(root); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var out []Sealed
	var errs []error
	err := eachContainerDir(root, func(dir string, files []os.DirEntry) {
		for _, f := range files {
			name := f.Name()
			if f.IsDir() || !strings.HasSuffix(name, DataSuffix) {
				continue
			}
			s := Sealed{Dir: dir, Name: name, acct: acct}
			m, err := readMeta(s.MetaPath())
			if err == nil {
				s.Meta = m
				out = append(out, s)
				continue
			}
			if err := checkSealed(root, s, err, now, acct); err != nil {
				errs = append(errs, err)
			}
		}
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("segment: scan %s: %w", root, err))
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

// checkSealed decides about a segment whose sidecar could not be used
// (readMeta's error merr): nothing if the data file is gone (uploaded or
// dropped meanwhile: Remove deletes it first), quarantine if the sidecar was
// read and is bad, else a report and another try at the next scan.
func checkSealed(root string, s Sealed, merr error, now time.Time, acct *ledger) error {
	if _, err := os.Lstat(s.Path()); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	switch {
	case errors.Is(merr, ErrBadMeta):
		err := merr
		if qerr := quarantine(root, s.Dir, now, s.Name, s.Name+MetaSuffix); qerr != nil {
			err = errors.Join(err, qerr)
		}
		if acct != nil {
			acct.remove(s.Path()) // quarantine does not count
		}
		return fmt.Errorf("segment: sealed %s has an unusable sidecar, quarantined: %w", s.Path(), err)
	case errors.Is(merr, fs.ErrNotExist):
		return fmt.Errorf("segment: sealed %s has no sidecar; left in place: %w: %w", s.Path(), ErrBadMeta, merr)
	default:
		return fmt.Errorf("segment: sealed %s: reading its sidecar failed; left for the next scan: %w", s.Path(), merr)
	}
}
