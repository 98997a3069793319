package segment

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// MetaVersion is the version of the sidecar format written by this package.
const MetaVersion = 1

// File name suffixes inside a container folder of the spool.
const (
	// DataSuffix ends the name of a sealed segment file: a complete zstd stream.
	DataSuffix = ".jsonl.zst"
	// PartialSuffix is appended to DataSuffix while a segment is being written.
	PartialSuffix = ".partial"
	// MetaSuffix is appended to DataSuffix for the segment's JSON sidecar.
	MetaSuffix = ".meta.json"
	// seqFile holds the next sequence number of a container folder.
	seqFile = "seq"
)

// Destination says where a segment is uploaded. It carries no credentials:
// those come from the uploader's environment.
type Destination struct {
	Bucket         string `json:"bucket"`
	Region         string `json:"region,omitempty"`
	Endpoint       string `json:"endpoint,omitempty"`
	ForcePathStyle bool   `json:"force_path_style,omitempty"`
	StorageClass   string `json:"storage_class,omitempty"`
	SSE            string `json:"sse,omitempty"`
	SSEKMSKeyID    string `json:"sse_kms_key_id,omitempty"`
}

// Container identifies the container whose records a segment holds.
type Container struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	ImageName string `json:"image_name,omitempty"`
	ImageID   string `json:"image_id,omitempty"`
}

// Meta describes one segment. It is stored beside the data file as a JSON
// sidecar (NAME.jsonl.zst.meta.json), written when the segment is opened and
// rewritten when it is sealed, so it survives restarts.
type Meta struct {
	Version     int         `json:"version"`
	Key         string      `json:"key"`
	Destination Destination `json:"destination"`
	Container   Container   `json:"container"`
	// Seq never repeats within a container folder (see Spool).
	Seq uint64 `json:"seq"`
	// FirstTime and LastTime are the timestamps of the first and last record.
	FirstTime time.Time `json:"first_time"`
	LastTime  time.Time `json:"last_time"`
	// Records counts records; RawBytes their uncompressed bytes;
	// CompressedBytes the size of the sealed file. All zero while open.
	Records         int64 `json:"records"`
	RawBytes        int64 `json:"raw_bytes"`
	CompressedBytes int64 `json:"compressed_bytes"`
	// Reason says why the segment was sealed (one of the Reason constants).
	Reason string `json:"reason,omitempty"`
	// SealedAt is the wall-clock time of sealing.
	SealedAt time.Time `json:"sealed_at,omitempty"`
}

// Reasons a segment is sealed, stored in Meta.Reason.
const (
	ReasonSize      = "size"      // reached the size limit
	ReasonAge       = "age"       // first record older than the age limit
	ReasonStop      = "stop"      // the stream ended (container stopped)
	ReasonShutdown  = "shutdown"  // the plugin is shutting down
	ReasonRecovered = "recovered" // repaired after a crash
)

// Sealed is a sealed segment on disk: its data file and its metadata.
// A Sealed value is immutable; its methods may be called concurrently.
type Sealed struct {
	// Dir is the container folder; Name the data file name inside it.
	Dir  string
	Name string
	Meta Meta
}

// Path returns the data file's path.
func (s Sealed) Path() string { return filepath.Join(s.Dir, s.Name) }

// MetaPath returns the sidecar's path.
func (s Sealed) MetaPath() string { return filepath.Join(s.Dir, s.Name+MetaSuffix) }

// Open opens the sealed data file for reading.
func (s Sealed) Open() (*os.File, error) { return os.Open(s.Path()) }

// Remove deletes the data file, then the sidecar, then syncs the folder.
// Removing a segment that is already gone is not an error.
func (s Sealed) Remove() error {
	if err := os.Remove(s.Path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("segment: remove %s: %w", s.Path(), err)
	}
	if err := os.Remove(s.MetaPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("segment: remove %s: %w", s.MetaPath(), err)
	}
	return syncDir(s.Dir)
}

// readMeta reads and checks a sidecar.
func readMeta(path string) (Meta, error) {
	var m Meta
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("segment: sidecar %s: %w: %w", path, ErrBadMeta, err)
	}
	if m.Version != MetaVersion || m.Key == "" || m.Destination.Bucket == "" {
		return m, fmt.Errorf("segment: sidecar %s: %w: version %d, key %q", path, ErrBadMeta, m.Version, m.Key)
	}
	return m, nil
}

// writeMeta writes a sidecar atomically: temporary file, fsync, rename.
// The caller syncs the folder.
func writeMeta(path string, m *Meta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("segment: encode sidecar: %w", err)
	}
	return writeFileAtomic(path, b)
}

// writeFileAtomic writes b to path through a temporary file that is synced
// and renamed over path. The caller syncs the folder.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("segment: write %s: %w", path, err)
	}
	return nil
}

// syncDir fsyncs a folder so that creations, renames and removals in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("segment: sync folder: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("segment: sync folder %s: %w", dir, err)
	}
	return nil
}
