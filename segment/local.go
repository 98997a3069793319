package segment

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Local is one segment of a container in the spool, as a reader sees it:
// sealed and waiting for upload, or still being written.
type Local struct {
	// Path is the data file. A sealed segment's file is removed once it is
	// uploaded; a growing one is renamed to its sealed name when sealed
	// (an open descriptor keeps reading it).
	Path string
	// Meta is the sidecar: Key, Seq and FirstTime are always set; the
	// counts only once sealed.
	Meta Meta
	// Growing is true while the segment is written: its file ends at the
	// writer's last flush, inside a zstd frame.
	Growing bool
}

// SealedPath returns the name the data file has once sealed.
func (l Local) SealedPath() string { return strings.TrimSuffix(l.Path, PartialSuffix) }

// Locals lists the segments of a container (by full id) in the spool, in
// sequence order. Files that vanish while it lists (uploaded, sealed) are
// skipped; files without a readable sidecar are skipped too (the janitor
// deals with them). A container without a folder has none. Safe for
// concurrent use; it reads the folder without the Spool's locks.
func (s *Spool) Locals(containerID string) ([]Local, error) {
	if !validContainerID(containerID) {
		return nil, nil
	}
	dir := filepath.Join(s.root, containerID)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Local
	for _, e := range entries {
		name := e.Name()
		growing := strings.HasSuffix(name, DataSuffix+PartialSuffix)
		if !growing && !strings.HasSuffix(name, DataSuffix) {
			continue
		}
		base := strings.TrimSuffix(name, PartialSuffix)
		m, err := readMeta(filepath.Join(dir, base+MetaSuffix))
		if err != nil {
			continue
		}
		out = append(out, Local{Path: filepath.Join(dir, name), Meta: m, Growing: growing})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Meta.Seq < out[j].Meta.Seq })
	return out, nil
}
