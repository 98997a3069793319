package segment_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/s3logs/s3logs/driver/fifo"
	"github.com/s3logs/s3logs/driver/record"
	"github.com/s3logs/s3logs/segment"
)

// TestMaxRecordLenBounds checks the bounds segment repeats against the
// driver's own (the request body bound, maxBody in driver/http.go, is not
// exported: it is checked by reading the source).
func TestMaxRecordLenBounds(t *testing.T) {
	if segment.MaxLogLineForTest != record.MaxRecordSize {
		t.Errorf("maxLogLine %d, driver/record.MaxRecordSize %d", segment.MaxLogLineForTest, record.MaxRecordSize)
	}
	if segment.MaxSourceForTest != fifo.MaxFrameSize {
		t.Errorf("maxSource %d, driver/fifo.MaxFrameSize %d", segment.MaxSourceForTest, fifo.MaxFrameSize)
	}
	src, err := os.ReadFile("../driver/http.go")
	if err != nil {
		t.Skip("driver source not found:", err)
	}
	want := fmt.Sprintf("const maxBody = %d << 20", segment.MaxAttrsForTest>>20)
	if !bytes.Contains(src, []byte(want)) {
		t.Errorf("driver/http.go no longer says %q: update maxAttrs", want)
	}
}

// worstRecord builds the longest JSON line the driver can: a full line, a
// stream name as long as a frame allows and attrs as large as a
// StartLogging request allows, every byte of them escaped to six.
func worstRecord(t *testing.T) []byte {
	t.Helper()
	r := &record.Record{
		Line:    bytes.Repeat([]byte{0x01}, record.MaxRecordSize),
		Newline: true,
		Source:  strings.Repeat("\x02", fifo.MaxFrameSize),
		Time:    time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	attrs, err := record.MarshalAttrs(map[string]string{"<": strings.Repeat("<", segment.MaxAttrsForTest-1)})
	if err != nil {
		t.Fatal(err)
	}
	rec := record.AppendJSON(nil, r, attrs)
	if len(rec) > segment.MaxRecordLen {
		t.Fatalf("the driver can build a %d-byte record, MaxRecordLen is %d", len(rec), segment.MaxRecordLen)
	}
	if len(rec) < segment.MaxRecordLen-1024 {
		t.Fatalf("worst record %d bytes, far below MaxRecordLen %d: the bound or the test is off", len(rec), segment.MaxRecordLen)
	}
	return rec
}

// TestMaxRecordSurvivesRecovery writes the largest record the driver can
// build between two small ones, "crashes" with the segment open, and checks
// that recovery keeps all three, byte for byte.
func TestMaxRecordSurvivesRecovery(t *testing.T) {
	big := worstRecord(t)
	root := t.TempDir()
	sp, err := segment.Open(segment.Config{Root: root, NoTicker: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	const id = "maxrecord"
	w, err := sp.NewWriter(segment.WriterOptions{
		Container:   segment.Container{ID: id},
		Destination: segment.Destination{Bucket: "logs"},
		Key:         func(time.Time, uint64) string { return "k" },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{[]byte("{\"log\":\"before\"}\n"), big, []byte("{\"log\":\"after\"}\n")}
	for _, rec := range want {
		if err := w.Append(time.Now(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// The process dies with the segment open: the next start recovers a
	// copy of its spool (the lock stays with this "dead" one).
	other := filepath.Join(t.TempDir(), "spool")
	copyDir(t, root, other)
	sp2, err := segment.Open(segment.Config{Root: other, NoTicker: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp2.Close()
	reps, err := sp2.Recover()
	if err != nil || len(reps) != 1 || reps[0].Err != nil || reps[0].Sealed == nil {
		t.Fatalf("Recover = %+v, %v", reps, err)
	}
	if reps[0].Records != 3 {
		t.Fatalf("recovered %d records, want 3", reps[0].Records)
	}
	f, err := reps[0].Sealed.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, _ := zstd.NewReader(f)
	defer d.Close()
	got := sha256.New()
	if _, err := io.Copy(got, d); err != nil {
		t.Fatal(err)
	}
	wantSum := sha256.New()
	for _, rec := range want {
		wantSum.Write(rec)
	}
	if !bytes.Equal(got.Sum(nil), wantSum.Sum(nil)) {
		t.Fatal("recovered data differs from the records")
	}
	w.Close(segment.ReasonStop)
	sp.Close()
}

// TestAppendRefusesRecordsRecoveryWouldNotKeep: a record over MaxRecordLen
// is refused, so that Append never accepts what recovery would call corrupt.
func TestAppendRefusesRecordsRecoveryWouldNotKeep(t *testing.T) {
	sp, err := segment.Open(segment.Config{Root: t.TempDir(), NoTicker: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	w, err := sp.NewWriter(segment.WriterOptions{Container: segment.Container{ID: "c"}, Destination: segment.Destination{Bucket: "b"},
		Key: func(time.Time, uint64) string { return "k" }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(segment.ReasonStop)
	rec := bytes.Repeat([]byte("x"), segment.MaxRecordLen+1)
	rec[len(rec)-1] = '\n'
	if err := w.Append(time.Now(), rec); err == nil || errors.Is(err, segment.ErrAbandoned) {
		t.Fatalf("Append of %d bytes = %v, want a refusal", len(rec), err)
	}
}

func copyDir(t *testing.T, src, dst string) {
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
