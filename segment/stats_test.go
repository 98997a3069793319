package segment

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStatsFollowSealsUploadsAndDrops checks each counter and gauge of
// Stats against what the test did: seals by reason, bytes written, the
// sealed backlog and its oldest seal time, removals and drops.
func TestStatsFollowSealsUploadsAndDrops(t *testing.T) {
	h := newHarness(t, t.TempDir())
	if st := h.spool.Stats(); st.SealedSegments != 0 || st.SealedBytes != 0 || !st.OldestSealed.IsZero() || st.WrittenBytes != 0 {
		t.Fatalf("empty spool: %+v", st)
	}
	w := h.writer(WriterOptions{MaxAge: 10 * time.Second})
	w.Append(h.clock.Now(), record(1))
	h.clock.Add(10 * time.Second)
	h.spool.Tick() // sealed by age
	first := h.clock.Now()
	h.clock.Add(5 * time.Second)
	w.Append(h.clock.Now(), record(2))
	w.Append(h.clock.Now(), record(3))
	w.Close(ReasonStop)
	seals := h.seals()
	if len(seals) != 2 {
		t.Fatalf("%d seals, want 2", len(seals))
	}

	st := h.spool.Stats()
	if st.Sealed[ReasonAge] != 1 || st.Sealed[ReasonStop] != 1 || st.Sealed[ReasonSize] != 0 || len(st.Sealed) != len(reasons) {
		t.Errorf("Sealed = %v, want age 1, stop 1 and a zero for every other reason", st.Sealed)
	}
	var compressed, onDisk int64
	for _, s := range seals {
		compressed += s.Meta.CompressedBytes
		fi, err := os.Stat(s.MetaPath())
		if err != nil {
			t.Fatal(err)
		}
		onDisk += s.Meta.CompressedBytes + fi.Size()
	}
	if st.WrittenBytes != compressed {
		t.Errorf("WrittenBytes = %d, want the sealed files' %d", st.WrittenBytes, compressed)
	}
	if st.SealedSegments != 2 || st.SealedBytes != onDisk {
		t.Errorf("backlog %d segments, %d bytes; want 2, %d", st.SealedSegments, st.SealedBytes, onDisk)
	}
	if !st.OldestSealed.Equal(first) {
		t.Errorf("OldestSealed = %v, want the first seal at %v", st.OldestSealed, first)
	}
	if st.FreeBytes <= 0 {
		t.Errorf("FreeBytes = %d", st.FreeBytes)
	}

	// The oldest is uploaded: the next one's seal time is the oldest.
	if err := seals[0].Remove(); err != nil {
		t.Fatal(err)
	}
	st = h.spool.Stats()
	if st.SealedSegments != 1 || !st.OldestSealed.Equal(seals[1].Meta.SealedAt) {
		t.Errorf("after one upload: %d segments, oldest %v; want 1, %v", st.SealedSegments, st.OldestSealed, seals[1].Meta.SealedAt)
	}
	// A correcting walk keeps the seal time the ledger knew.
	h.spool.jan.visitMu.Lock()
	h.spool.jan.measureLocked(h.clock.Now())
	h.spool.jan.visitMu.Unlock()
	if st := h.spool.Stats(); !st.OldestSealed.Equal(seals[1].Meta.SealedAt) {
		t.Errorf("after a walk: oldest %v, want %v", st.OldestSealed, seals[1].Meta.SealedAt)
	}
	if err := seals[1].Remove(); err != nil {
		t.Fatal(err)
	}
	if st := h.spool.Stats(); st.SealedSegments != 0 || !st.OldestSealed.IsZero() {
		t.Errorf("all uploaded: %+v", st)
	}
}

func TestStatsCountDrops(t *testing.T) {
	h := newHarness(t, t.TempDir())
	sealN(t, h, 6)
	var total, records int64
	for _, s := range h.seals() {
		total += s.Meta.CompressedBytes
	}
	h.spool.jan.limit = total / 2
	h.spool.jan.visit()
	for _, s := range h.seals() {
		if _, err := os.Stat(s.Path()); errors.Is(err, os.ErrNotExist) {
			records += s.Meta.Records
		}
	}
	st := h.spool.Stats()
	if st.DroppedSegments == 0 || st.DroppedSegments != h.spool.Dropped() || st.DroppedRecords != records {
		t.Errorf("dropped %d segments, %d records; want %d, %d", st.DroppedSegments, st.DroppedRecords, h.spool.Dropped(), records)
	}
	if st.Sealed[ReasonSize]+st.Sealed[ReasonStop] != uint64(len(h.seals())) {
		t.Errorf("Sealed = %v for %d seals", st.Sealed, len(h.seals()))
	}
}

// TestStatsAfterRestart: segments an earlier process left are dated by
// their data file's last write.
func TestStatsAfterRestart(t *testing.T) {
	root := t.TempDir()
	h := newHarness(t, root)
	w := h.writer(WriterOptions{})
	w.Append(h.clock.Now(), record(1))
	w.Close(ReasonStop)
	s := h.seals()[0]
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(s.Path(), old, old); err != nil {
		t.Fatal(err)
	}
	h.crash()
	sp, err := openQuiet(t, root)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if st := sp.Stats(); st.SealedSegments != 1 || !st.OldestSealed.Equal(old) || st.Sealed[ReasonStop] != 0 {
		t.Errorf("reopened spool: %+v, want 1 segment sealed at %v and no seal counted", st, old)
	}
}

func TestCheckLock(t *testing.T) {
	root := t.TempDir()
	sp, err := openQuiet(t, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.CheckLock(); err != nil {
		t.Fatalf("fresh spool: %v", err)
	}
	// A lock file replaced behind the spool's back no longer excludes a
	// second owner.
	lock := filepath.Join(root, lockFile)
	if err := os.Remove(lock); err != nil {
		t.Fatal(err)
	}
	if err := sp.CheckLock(); !errors.Is(err, ErrLockLost) {
		t.Fatalf("lock file removed: %v, want ErrLockLost", err)
	}
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := sp.CheckLock(); !errors.Is(err, ErrLockLost) || !strings.Contains(err.Error(), "replaced") {
		t.Fatalf("lock file replaced: %v, want ErrLockLost", err)
	}
	sp.Close()
	if err := sp.CheckLock(); !errors.Is(err, ErrClosed) {
		t.Fatalf("closed spool: %v, want ErrClosed", err)
	}
}

func TestCheckWritable(t *testing.T) {
	root := filepath.Join(t.TempDir(), "segments")
	sp, err := openQuiet(t, root)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if err := sp.CheckWritable(); err != nil {
		t.Fatalf("fresh spool: %v", err)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), probePrefix) {
			t.Errorf("probe file %s left behind", e.Name())
		}
	}
	// The folder gone (an unmounted or removed spool): not writable.
	// (Permissions cannot be tested as root, who ignores them.)
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	if err := sp.CheckWritable(); err == nil {
		t.Fatal("spool folder removed, CheckWritable = nil")
	}
}
