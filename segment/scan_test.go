package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// withReadFile replaces the sidecar reader for one test.
func withReadFile(t *testing.T, f func(path string) ([]byte, error)) {
	t.Helper()
	readFile = f
	t.Cleanup(func() { readFile = os.ReadFile })
}

// TestScanKeepsSegmentsOnTransientErrors: an error reading a sidecar that is
// not about its content (EIO, EMFILE) is reported, and the segment is left
// in place for the next scan, not quarantined.
func TestScanKeepsSegmentsOnTransientErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.EMFILE} {
		t.Run(errno.Error(), func(t *testing.T) {
			h := newHarness(t, t.TempDir())
			seals := sealN(t, h, 3)
			bad := seals[1].MetaPath()
			withReadFile(t, func(path string) ([]byte, error) {
				if path == bad {
					return nil, &os.PathError{Op: "read", Path: path, Err: errno}
				}
				return os.ReadFile(path)
			})
			got, err := ScanSealed(h.root)
			if !errors.Is(err, errno) || errors.Is(err, ErrBadMeta) {
				t.Fatalf("ScanSealed error = %v, want %v and not ErrBadMeta", err, errno)
			}
			if len(got) != 2 {
				t.Fatalf("%d segments listed, want the 2 readable ones", len(got))
			}
			if _, err := os.Stat(seals[1].Path()); err != nil {
				t.Fatalf("segment moved away on a transient error: %v", err)
			}
			if _, err := os.Stat(filepath.Join(h.root, QuarantineDir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("quarantine created on a transient error")
			}
			readFile = os.ReadFile
			if got, err := ScanSealed(h.root); err != nil || len(got) != 3 {
				t.Fatalf("next scan = %d segments, %v; want 3", len(got), err)
			}
		})
	}
}

// TestScanSkipsSegmentsRemovedMidScan: a segment the uploader removes while
// the scan looks (after its folder was listed) is neither listed, reported,
// nor quarantined.
func TestScanSkipsSegmentsRemovedMidScan(t *testing.T) {
	h := newHarness(t, t.TempDir())
	seals := sealN(t, h, 3)
	gone := seals[1]
	withReadFile(t, func(path string) ([]byte, error) {
		if path == gone.MetaPath() {
			if err := gone.Remove(); err != nil {
				t.Error(err)
			}
		}
		return os.ReadFile(path)
	})
	got, err := ScanSealed(h.root)
	if err != nil {
		t.Fatalf("ScanSealed reported a removal in progress: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("%d segments, want 2", len(got))
	}
	if _, err := os.Stat(filepath.Join(h.root, QuarantineDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("quarantine created for a removed segment")
	}
}

// TestScanLeavesSegmentWithoutSidecar: a data file whose sidecar is missing
// (never produced by Remove, which deletes the data first) is reported with
// ErrBadMeta and left in place; only a sidecar that exists and is bad
// sends a segment to quarantine (TestScanSealedOrderAndBadSidecar).
func TestScanLeavesSegmentWithoutSidecar(t *testing.T) {
	h := newHarness(t, t.TempDir())
	seals := sealN(t, h, 2)
	os.Remove(seals[0].MetaPath())
	got, err := ScanSealed(h.root)
	if !errors.Is(err, ErrBadMeta) || len(got) != 1 {
		t.Fatalf("ScanSealed = %d segments, %v", len(got), err)
	}
	if _, err := os.Stat(seals[0].Path()); err != nil {
		t.Fatal("data file without sidecar moved")
	}
}

// TestScanSkipsPrunedFolder: a container folder removed between the listing
// of the root and its own listing is skipped silently.
func TestScanSkipsPrunedFolder(t *testing.T) {
	root := t.TempDir()
	for i := range 50 {
		os.MkdirAll(filepath.Join(root, fmt.Sprintf("c%02d", i)), 0o700)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			os.Remove(filepath.Join(root, fmt.Sprintf("c%02d", i)))
		}
	}()
	for range 20 {
		if _, err := ScanSealed(root); err != nil {
			t.Fatal(err)
		}
	}
	<-done
}

// TestQuarantineAgesOut: quarantined files are deleted, with a log line,
// QuarantineMaxAge after they were quarantined, and not before.
func TestQuarantineAgesOut(t *testing.T) {
	logs := newLogCounter()
	h := newHarness(t, t.TempDir())
	h.spool.jan.log = slog.New(logs)
	seals := sealN(t, h, 2)
	os.WriteFile(seals[0].MetaPath(), []byte("{not json"), 0o600)
	if _, err := h.spool.ScanSealed(); !errors.Is(err, ErrBadMeta) {
		t.Fatalf("ScanSealed = %v", err)
	}
	q := filepath.Join(h.root, QuarantineDir, testCID, seals[0].Name)
	if _, err := os.Stat(q); err != nil {
		t.Fatal(err)
	}
	h.spool.jan.visit()
	h.clock.Add(DefaultQuarantineMaxAge - time.Hour)
	h.spool.jan.visit()
	if _, err := os.Stat(q); err != nil {
		t.Fatalf("quarantined file deleted before its time: %v", err)
	}
	h.clock.Add(time.Hour)
	h.spool.jan.visit()
	if _, err := os.Stat(q); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("quarantined file kept past its time: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(q)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("empty quarantine folder kept")
	}
	if n := logs.count("deleted a quarantined file"); n != 2 {
		t.Fatalf("%d deletion lines, want 2 (data and sidecar)", n)
	}
	// The other segment is untouched.
	if _, err := os.Stat(seals[1].Path()); err != nil {
		t.Fatal(err)
	}
}
