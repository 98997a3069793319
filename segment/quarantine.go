package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// QuarantineDir is the folder under the spool root where files that cannot be
// used are moved, into a folder per container. Nothing in it is uploaded by
// s3logs, and nothing counts toward Config.Limit; the janitor deletes each
// file Config.QuarantineMaxAge after it was quarantined, logging it.
const QuarantineDir = "_quarantine"

// quarantineCheckEvery is how often the janitor looks for quarantined files
// to age out.
const quarantineCheckEvery = time.Hour

// quarantine moves the named files of dir into root/_quarantine/<container>/
// and sets their modification time to now, the time the janitor ages them
// from. Files that do not exist are skipped.
func quarantine(root, dir string, now time.Time, names ...string) error {
	qdir := filepath.Join(root, QuarantineDir, filepath.Base(dir))
	if err := mkdirAllSync(qdir); err != nil {
		return fmt.Errorf("segment: quarantine: %w", err)
	}
	var errs []error
	for _, n := range names {
		dst := filepath.Join(qdir, n)
		err := os.Rename(filepath.Join(dir, n), dst)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("segment: quarantine %s: %w", n, err))
		}
		if err == nil {
			os.Chtimes(dst, now, now)
		}
	}
	if err := syncDir(qdir); err != nil {
		errs = append(errs, err)
	}
	if err := syncRemoval(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ageQuarantineLocked deletes the quarantined files older than the
// janitor's quarantineAge (by modification time, which quarantine sets),
// and the container folders of the quarantine left empty; at most once per
// quarantineCheckEvery. Called with visitMu held.
func (j *janitor) ageQuarantineLocked(now time.Time) {
	if !j.lastQuarCheck.IsZero() && now.Sub(j.lastQuarCheck) < quarantineCheckEvery {
		return
	}
	j.lastQuarCheck = now
	qroot := filepath.Join(j.root, QuarantineDir)
	dirs, err := os.ReadDir(qroot)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			j.log.Warn("cannot read the quarantine", "path", qroot, "err", err)
		}
		return
	}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		dir := filepath.Join(qroot, d.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		left := len(files)
		for _, f := range files {
			fi, err := f.Info()
			if err != nil || fi.IsDir() {
				continue
			}
			age := now.Sub(fi.ModTime())
			if age < j.quarantineAge {
				continue
			}
			path := filepath.Join(dir, f.Name())
			if err := os.Remove(path); err != nil {
				j.log.Warn("cannot delete an aged-out quarantined file", "path", path, "err", err)
				continue
			}
			left--
			j.log.Warn("deleted a quarantined file after its retention", "path", path, "bytes", fi.Size(),
				"age", age.Round(time.Minute), "retention", j.quarantineAge)
		}
		if left == 0 {
			os.Remove(dir)
		}
	}
	syncDir(qroot)
}
