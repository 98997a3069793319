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
	// Seq never repeats within the spool, and so never within a container
	// (see seqCounter); it may skip numbers.
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
	// ContentMD5 is the base64 MD5 of the sealed data file, computed while
	// it was written (the upload's Content-MD5). Empty for segments
	// sealed by versions before it existed.
	ContentMD5 string `json:"content_md5,omitempty"`
	// PartMD5s are the base64 MD5s of the file's PartSize-byte parts (the
	// last one shorter), for a multipart upload; set only for files larger
	// than one part, with PartSize.
	PartSize int64    `json:"part_size,omitempty"`
	PartMD5s []string `json:"part_md5s,omitempty"`
}

// Reasons a segment is sealed, stored in Meta.Reason.
const (
	ReasonSize      = "size"      // reached the size limit
	ReasonAge       = "age"       // first record older than the age limit
	ReasonStop      = "stop"      // the stream ended (container stopped)
	ReasonShutdown  = "shutdown"  // the plugin is shutting down
	ReasonRecovered = "recovered" // repaired after a crash
)

// reasons lists the Reason constants; Stats.Sealed counts by them.
var reasons = [...]string{ReasonSize, ReasonAge, ReasonStop, ReasonShutdown, ReasonRecovered}

// reasonIndex returns the index of a reason in reasons, or -1.
func reasonIndex(reason string) int {
	for i, r := range reasons {
		if r == reason {
			return i
		}
	}
	return -1
}

// Sealed is a sealed segment on disk: its data file and its metadata.
// A Sealed value is immutable; its methods may be called concurrently.
type Sealed struct {
	// Dir is the container folder; Name the data file name inside it.
	Dir  string
	Name string
	Meta Meta

	// acct is the ledger of the Spool that sealed or listed the segment,
	// told by Remove; nil for a Sealed built elsewhere or listed by the
	// package-level ScanSealed (the janitor's walks catch up with those).
	acct *ledger
}

// Path returns the data file's path.
func (s Sealed) Path() string { return filepath.Join(s.Dir, s.Name) }

// MetaPath returns the sidecar's path.
func (s Sealed) MetaPath() string { return filepath.Join(s.Dir, s.Name+MetaSuffix) }

// Open opens the sealed data file for reading.
func (s Sealed) Open() (*os.File, error) { return os.Open(s.Path()) }

// Remove deletes the data file, then the sidecar, then syncs the folder,
// and tells the Spool that sealed or listed the segment, whose janitor may
// then remove the container folder once it holds nothing and no Writer
// holds it. Removing a segment that is already gone is not an error, nor is
// a folder that is gone by the time it is synced (the janitor removed it
// once the segment was gone).
//
// The order matters to concurrent scans: a sidecar is never missing while
// its data file exists, so ScanSealed can tell a removal in progress from a
// broken segment.
func (s Sealed) Remove() error {
	if err := os.Remove(s.Path()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("segment: remove %s: %w", s.Path(), err)
	}
	err := os.Remove(s.MetaPath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		err = fmt.Errorf("segment: remove %s: %w", s.MetaPath(), err)
	} else {
		err = nil
	}
	if s.acct != nil {
		s.acct.remove(s.Path())
	}
	return errors.Join(err, syncRemoval(s.Dir))
}

// readFile reads a sidecar; tests replace it to inject errors.
var readFile = os.ReadFile

// readMeta reads and checks a sidecar. An error wrapping ErrBadMeta means
// the sidecar was read and is unusable; others come from reading it.
func readMeta(path string) (Meta, error) {
	var m Meta
	b, err := readFile(path)
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
// It returns the sidecar's size. The caller syncs the folder.
func writeMeta(path string, m *Meta) (int64, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return 0, fmt.Errorf("segment: encode sidecar: %w", err)
	}
	return int64(len(b)), writeFileAtomic(path, b)
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

// syncRemoval is syncDir after a removal from a container folder: a folder
// that is gone (pruned because it was empty) needs no sync.
func syncRemoval(dir string) error {
	err := syncDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// syncHook, when set by a test, is told of every folder syncDir syncs.
var syncHook func(dir string)

// syncDir fsyncs a folder so that creations, renames and removals in it are durable.
func syncDir(dir string) error {
	if syncHook != nil {
		syncHook(dir)
	}
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
