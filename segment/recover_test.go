package segment

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// crashedSpool writes records into a segment without sealing it, flushing
// after each record of the last part, and returns the spool root, the
// records, and the file size after each record's flush (0 for records of the
// first part, which are flushed once at the end of the part).
func crashedSpool(t *testing.T, first, last int) (root string, recs [][]byte, ends []int64) {
	t.Helper()
	root = t.TempDir()
	h := newHarness(t, root)
	w := h.writer(WriterOptions{})
	partial := filepath.Join(root, testCID, fileName(1)+PartialSuffix)
	size := func() int64 {
		fi, err := os.Stat(partial)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for i := range first + last {
		r := record(i)
		recs = append(recs, r)
		if err := w.Append(h.clock.Now().Add(time.Duration(i)*time.Millisecond), r); err != nil {
			t.Fatal(err)
		}
		if i == first-1 || i >= first {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		if i == first-1 {
			// End the first frame as an idle stream would, so the file holds
			// a complete frame followed by a frame in progress.
			h.clock.Add(DefaultFlushInterval)
			h.spool.Tick()
		}
		ends = append(ends, size())
	}
	// The process "dies": the Writer is never closed.
	h.crash()
	return root, recs, ends
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRecoverTruncatedAtEveryOffset(t *testing.T) {
	const first, last = 20, 4
	root, recs, ends := crashedSpool(t, first, last)
	partialRel := filepath.Join(testCID, fileName(1)+PartialSuffix)
	start := ends[first-1]
	end := ends[len(ends)-1]
	for off := start; off <= end; off++ {
		dst := t.TempDir()
		copyTree(t, root, dst)
		if err := os.Truncate(filepath.Join(dst, partialRel), off); err != nil {
			t.Fatal(err)
		}
		h := newHarness(t, dst)
		reps, err := h.spool.Recover()
		if err != nil || len(reps) != 1 {
			t.Fatalf("offset %d: Recover = %v, %v", off, reps, err)
		}
		rep := reps[0]
		if rep.Err != nil || rep.Quarantined || rep.Sealed == nil {
			t.Fatalf("offset %d: report %+v", off, rep)
		}
		// Every record whose block was completely written is kept.
		want := 0
		for i, e := range ends {
			if e <= off {
				want = i + 1
			}
		}
		if rep.Records != int64(want) {
			t.Fatalf("offset %d: kept %d records, want %d", off, rep.Records, want)
		}
		got := decodeFile(t, rep.Sealed.Path())
		if !bytes.Equal(got, bytes.Join(recs[:want], nil)) {
			t.Fatalf("offset %d: recovered data differs", off)
		}
		m := rep.Sealed.Meta
		if m.Reason != ReasonRecovered || m.Records != int64(want) || m.Seq != 1 || m.Key == "" {
			t.Fatalf("offset %d: meta %+v", off, m)
		}
		if sum := fileMD5(t, rep.Sealed.Path()); m.ContentMD5 != sum {
			t.Fatalf("offset %d: ContentMD5 %q, file's %q", off, m.ContentMD5, sum)
		}
		if _, err := os.Stat(filepath.Join(dst, partialRel)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("offset %d: in-progress file left behind", off)
		}
		scanned, err := ScanSealed(dst)
		if err != nil || len(scanned) != 1 {
			t.Fatalf("offset %d: ScanSealed %v %v", off, scanned, err)
		}
		h.spool.Close()
	}
}

func TestRecoverWithRecordTime(t *testing.T) {
	root, recs, _ := crashedSpool(t, 3, 2)
	h := newHarness(t, root)
	h.spool.rep.recTime = func(rec []byte) (time.Time, bool) {
		if !bytes.Equal(rec, recs[len(recs)-1]) {
			t.Errorf("RecordTime got %q", rec)
		}
		return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), true
	}
	reps, _ := h.spool.Recover()
	if got := reps[0].Sealed.Meta.LastTime; !got.Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("LastTime = %v", got)
	}
	// The next segment of the container gets a new sequence number.
	w := h.writer(WriterOptions{})
	w.Append(h.clock.Now(), record(1))
	w.Close(ReasonStop)
	if got := h.seals()[0].Meta.Seq; got <= 1 {
		t.Fatalf("seq after recovery = %d, want more than 1", got)
	}
}

func TestRecoverEmptyFile(t *testing.T) {
	root := t.TempDir()
	h := newHarness(t, root)
	w := h.writer(WriterOptions{})
	w.Append(h.clock.Now(), record(1)) // never flushed: the file is empty
	h.crash()
	h2 := newHarness(t, root)
	reps, err := h2.spool.Recover()
	if err != nil || len(reps) != 1 || reps[0].Sealed != nil || reps[0].Err != nil {
		t.Fatalf("Recover = %+v, %v", reps, err)
	}
	files, _ := os.ReadDir(filepath.Join(root, testCID))
	for _, f := range files {
		t.Errorf("left behind: %s", f.Name())
	}
}

func TestRecoverCorruptMiddleQuarantines(t *testing.T) {
	root, recs, ends := crashedSpool(t, 20, 8)
	partial := filepath.Join(root, testCID, fileName(1)+PartialSuffix)
	b, _ := os.ReadFile(partial)
	// Inside the first frame, which is complete and carries a checksum. (A
	// flipped bit in the unfinished last frame has no checksum to catch it.)
	mid := ends[10]
	for i := mid; i < mid+8; i++ {
		b[i] ^= 0xA5
	}
	os.WriteFile(partial, b, 0o600)
	h := newHarness(t, root)
	reps, err := h.spool.Recover()
	if err != nil || len(reps) != 1 {
		t.Fatalf("Recover = %v, %v", reps, err)
	}
	rep := reps[0]
	if !rep.Quarantined || !errors.Is(rep.Err, ErrCorrupt) {
		t.Fatalf("report %+v, want quarantined with ErrCorrupt", rep)
	}
	q := filepath.Join(root, QuarantineDir, testCID)
	for _, n := range []string{fileName(1) + PartialSuffix, fileName(1) + MetaSuffix} {
		if _, err := os.Stat(filepath.Join(q, n)); err != nil {
			t.Errorf("quarantine lacks %s: %v", n, err)
		}
	}
	// What decoded before the corruption was detected is salvaged; nothing
	// after it is.
	if rep.Records >= int64(len(recs)) {
		t.Fatalf("salvaged %d records of %d past the corruption", rep.Records, len(recs))
	}
	if rep.Sealed != nil {
		if got := decodeFile(t, rep.Sealed.Path()); len(got) == 0 || got[len(got)-1] != '\n' {
			t.Fatal("salvaged segment ends mid-record")
		}
	}
}

func TestRecoverMissingSidecarQuarantines(t *testing.T) {
	root, _, _ := crashedSpool(t, 3, 1)
	os.Remove(filepath.Join(root, testCID, fileName(1)+MetaSuffix))
	h := newHarness(t, root)
	reps, _ := h.spool.Recover()
	if len(reps) != 1 || !reps[0].Quarantined || reps[0].Err == nil {
		t.Fatalf("reports %+v", reps)
	}
	if _, err := os.Stat(filepath.Join(root, QuarantineDir, testCID, fileName(1)+PartialSuffix)); err != nil {
		t.Fatal(err)
	}
}

// fileMD5 returns the base64 MD5 of a file.
func fileMD5(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}
