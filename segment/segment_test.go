package segment

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const testCID = "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"

type harness struct {
	t      *testing.T
	root   string
	clock  *fakeClock
	spool  *Spool
	mu     sync.Mutex
	sealed []Sealed
}

func newHarness(t *testing.T, root string) *harness {
	t.Helper()
	h := &harness{t: t, root: root, clock: &fakeClock{t: time.Date(2026, 11, 27, 15, 44, 5, 123e6, time.UTC)}}
	sp, err := Open(Config{Root: root, Now: h.clock.Now, NoTicker: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h.spool = sp
	t.Cleanup(func() { sp.Close() })
	return h
}

func (h *harness) writer(opts WriterOptions) *Writer {
	h.t.Helper()
	if opts.Container.ID == "" {
		opts.Container = Container{ID: testCID, Name: "/web", ImageName: "img:1"}
	}
	opts.Destination = Destination{Bucket: "logs", Endpoint: "http://127.0.0.1:9000", ForcePathStyle: true}
	opts.Key = func(first time.Time, seq uint64) string {
		return fmt.Sprintf("web/%s_%06d.jsonl.zst", first.UTC().Format("20060102T150405.000Z"), seq)
	}
	opts.OnSeal = func(s Sealed) { h.mu.Lock(); h.sealed = append(h.sealed, s); h.mu.Unlock() }
	w, err := h.spool.NewWriter(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	return w
}

// crash stops the spool as the death of its process would: the ticker stops
// and the lock is released, whatever Writers are open.
func (h *harness) crash() {
	h.spool.Close()
	h.spool.mu.Lock()
	if h.spool.lock != nil {
		h.spool.lock.Close()
		h.spool.lock = nil
	}
	h.spool.mu.Unlock()
}

func (h *harness) seals() []Sealed {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Sealed(nil), h.sealed...)
}

func record(i int) []byte {
	return fmt.Appendf(nil, `{"log":"line %d of the test corpus, with some text\n","stream":"stdout","time":"2026-11-27T15:44:05.%09dZ"}`+"\n", i, i)
}

func decodeFile(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := io.ReadAll(d)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	return b
}

func TestAppendAndSeal(t *testing.T) {
	h := newHarness(t, t.TempDir())
	w := h.writer(WriterOptions{})
	var want []byte
	for i := range 1000 {
		r := record(i)
		want = append(want, r...)
		if err := w.Append(h.clock.Now(), r); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(ReasonStop); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(h.clock.Now(), record(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	seals := h.seals()
	if len(seals) != 1 {
		t.Fatalf("%d sealed segments, want 1", len(seals))
	}
	s := seals[0]
	if got := decodeFile(t, s.Path()); !bytes.Equal(got, want) {
		t.Fatalf("decoded %d bytes, want %d", len(got), len(want))
	}
	if zstdCLI, err := exec.LookPath("zstd"); err == nil {
		out, err := exec.Command(zstdCLI, "-dc", s.Path()).Output()
		if err != nil {
			t.Fatalf("zstd -dc: %v", err)
		}
		if !bytes.Equal(out, want) {
			t.Fatal("zstd -dc output differs from the records")
		}
	}
	m := s.Meta
	fi, _ := os.Stat(s.Path())
	if m.Records != 1000 || m.RawBytes != int64(len(want)) || m.CompressedBytes != fi.Size() || m.Seq != 1 ||
		m.Reason != ReasonStop || m.Key == "" || m.Container.Name != "/web" || m.Destination.Bucket != "logs" {
		t.Fatalf("meta = %+v", m)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, want 0600", fi.Mode().Perm())
	}
	di, _ := os.Stat(s.Dir)
	if di.Mode().Perm() != 0o700 {
		t.Errorf("folder mode %v, want 0700", di.Mode().Perm())
	}
	scanned, err := ScanSealed(h.root)
	if err != nil || len(scanned) != 1 || scanned[0].Meta.Key != m.Key {
		t.Fatalf("ScanSealed = %v, %v", scanned, err)
	}
	if err := scanned[0].Remove(); err != nil {
		t.Fatal(err)
	}
	if left, _ := ScanSealed(h.root); len(left) != 0 {
		t.Fatalf("after Remove: %v", left)
	}
}

func TestNoEmptySegment(t *testing.T) {
	h := newHarness(t, t.TempDir())
	w := h.writer(WriterOptions{})
	h.clock.Add(time.Hour)
	h.spool.Tick()
	if err := w.Close(ReasonStop); err != nil {
		t.Fatal(err)
	}
	if len(h.seals()) != 0 {
		t.Fatal("a Writer without records sealed a segment")
	}
	files, _ := os.ReadDir(filepath.Join(h.root, testCID))
	for _, f := range files {
		t.Errorf("unexpected file %s", f.Name())
	}
}

func TestRotateBySize(t *testing.T) {
	h := newHarness(t, t.TempDir())
	const max = 4 << 10
	w := h.writer(WriterOptions{MaxSize: max, Level: zstd.SpeedFastest})
	var want []byte
	for i := range 20000 {
		r := fmt.Appendf(nil, "%d %x\n", i, uint64(i)*0x9E3779B97F4A7C15)
		want = append(want, r...)
		if err := w.Append(h.clock.Now(), r); err != nil {
			t.Fatal(err)
		}
	}
	w.Close(ReasonStop)
	seals := h.seals()
	if len(seals) < 5 {
		t.Fatalf("%d segments, want many", len(seals))
	}
	var got []byte
	keys := map[string]bool{}
	for i, s := range seals {
		if keys[s.Meta.Key] {
			t.Fatalf("key %s repeated", s.Meta.Key)
		}
		keys[s.Meta.Key] = true
		if s.Meta.Seq != uint64(i+1) {
			t.Fatalf("segment %d has seq %d", i, s.Meta.Seq)
		}
		if i < len(seals)-1 {
			if s.Meta.Reason != ReasonSize || s.Meta.CompressedBytes < max || s.Meta.CompressedBytes > max+max/4 {
				t.Fatalf("segment %d: reason %s, %d bytes", i, s.Meta.Reason, s.Meta.CompressedBytes)
			}
		}
		b := decodeFile(t, s.Path())
		if len(b) == 0 || b[len(b)-1] != '\n' {
			t.Fatalf("segment %d is empty or ends mid-record", i)
		}
		if sum := fileMD5(t, s.Path()); s.Meta.ContentMD5 != sum {
			t.Fatalf("segment %d: ContentMD5 %q, file's %q", i, s.Meta.ContentMD5, sum)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("concatenated segments differ from the records")
	}
}

func TestRotateByAgeWhenQuiet(t *testing.T) {
	h := newHarness(t, t.TempDir())
	w := h.writer(WriterOptions{MaxAge: 10 * time.Second})
	defer w.Close(ReasonStop)
	w.Append(h.clock.Now(), record(1))
	h.clock.Add(9 * time.Second)
	h.spool.Tick()
	if len(h.seals()) != 0 {
		t.Fatal("sealed before the age limit")
	}
	w.Append(h.clock.Now(), record(2))
	h.clock.Add(time.Second)
	h.spool.Tick()
	seals := h.seals()
	if len(seals) != 1 || seals[0].Meta.Reason != ReasonAge || seals[0].Meta.Records != 2 {
		t.Fatalf("after the age limit: %+v", seals)
	}
	if got := decodeFile(t, seals[0].Path()); !bytes.Equal(got, append(record(1), record(2)...)) {
		t.Fatal("aged segment content differs")
	}
}

func TestIdleReleasesEncoderAndKeepsFile(t *testing.T) {
	h := newHarness(t, t.TempDir())
	w := h.writer(WriterOptions{})
	var want []byte
	for burst := range 3 {
		for i := range 50 {
			r := record(burst*100 + i)
			want = append(want, r...)
			w.Append(h.clock.Now(), r)
		}
		h.clock.Add(DefaultFlushInterval)
		h.spool.Tick()
		w.mu.Lock()
		idle := w.cur.enc == nil
		w.mu.Unlock()
		if !idle {
			t.Fatal("idle Writer still holds an encoder")
		}
		// The data of the ended frame is in the file already.
		partial := filepath.Join(h.root, testCID, fileName(1)+PartialSuffix)
		if got := decodeFile(t, partial); !bytes.Equal(got, want) {
			t.Fatalf("burst %d: file holds %d bytes, want %d", burst, len(got), len(want))
		}
	}
	w.Close(ReasonStop)
	if got := decodeFile(t, h.seals()[0].Path()); !bytes.Equal(got, want) {
		t.Fatal("multi-frame segment differs")
	}
}

func TestTickFlushesStaleData(t *testing.T) {
	h := newHarness(t, t.TempDir())
	w := h.writer(WriterOptions{})
	defer w.Close(ReasonStop)
	w.Append(h.clock.Now(), record(1))
	h.clock.Add(DefaultFlushInterval / 2)
	w.Append(h.clock.Now(), record(2))
	h.clock.Add(DefaultFlushInterval / 2)
	h.spool.Tick() // dirty for a whole interval, not idle for one
	partial := filepath.Join(h.root, testCID, fileName(1)+PartialSuffix)
	raw, _ := os.ReadFile(partial)
	r, _ := zstd.NewReader(bytes.NewReader(raw))
	defer r.Close()
	got, err := io.ReadAll(r)
	if !errors.Is(err, io.ErrUnexpectedEOF) && err != nil {
		t.Fatalf("decode open segment: %v", err)
	}
	if !bytes.Equal(got, append(record(1), record(2)...)) {
		t.Fatalf("file holds %q after the flush interval", got)
	}
}

func TestSequenceSurvivesRestart(t *testing.T) {
	root := t.TempDir()
	h := newHarness(t, root)
	for range 2 {
		w := h.writer(WriterOptions{})
		w.Append(h.clock.Now(), record(1))
		w.Close(ReasonStop)
	}
	for _, s := range h.seals() {
		s.Remove() // uploaded
	}
	h.spool.Close()
	h2 := newHarness(t, root)
	w := h2.writer(WriterOptions{})
	w.Append(h2.clock.Now(), record(1))
	w.Close(ReasonStop)
	if got := h2.seals()[0].Meta.Seq; got <= 2 {
		t.Fatalf("seq after restart = %d, want more than 2", got)
	}
	// Two Writers of the same container never share a sequence number.
	a, b := h2.writer(WriterOptions{}), h2.writer(WriterOptions{})
	a.Append(h2.clock.Now(), record(1))
	b.Append(h2.clock.Now(), record(1))
	a.Close(ReasonStop)
	b.Close(ReasonStop)
	seen := map[uint64]bool{}
	for _, s := range h2.seals() {
		if seen[s.Meta.Seq] {
			t.Fatalf("seq %d used twice", s.Meta.Seq)
		}
		seen[s.Meta.Seq] = true
	}
}

func TestBadContainerID(t *testing.T) {
	h := newHarness(t, t.TempDir())
	for _, id := range []string{"", "../x", "a/b", "_quarantine", ".hidden", strings.Repeat("a", 129)} {
		_, err := h.spool.NewWriter(WriterOptions{Container: Container{ID: id}, Key: func(time.Time, uint64) string { return "k" }})
		if err == nil {
			t.Errorf("container id %q accepted", id)
		}
	}
}

func TestScanSealedOrderAndBadSidecar(t *testing.T) {
	h := newHarness(t, t.TempDir())
	w := h.writer(WriterOptions{MaxSize: 1})
	for i := range 3 {
		w.Append(h.clock.Now().Add(time.Duration(3-i)*time.Second), record(i))
		w.Flush()
	}
	w.Close(ReasonStop)
	seals := h.seals()
	if len(seals) != 3 {
		t.Fatalf("%d segments", len(seals))
	}
	os.WriteFile(seals[1].MetaPath(), []byte("{not json"), 0o600)
	got, err := ScanSealed(h.root)
	if !errors.Is(err, ErrBadMeta) {
		t.Fatalf("ScanSealed error = %v, want ErrBadMeta", err)
	}
	if len(got) != 2 || got[0].Meta.Seq != 3 || got[1].Meta.Seq != 1 {
		t.Fatalf("ScanSealed order: %+v", got)
	}
	if _, err := os.Stat(filepath.Join(h.root, QuarantineDir, testCID, seals[1].Name)); err != nil {
		t.Fatalf("bad segment not quarantined: %v", err)
	}
}

// TestPartMD5s: a segment larger than PartSize lists the MD5 of every
// PartSize part of its file, the last one shorter.
func TestPartMD5s(t *testing.T) {
	h := newHarness(t, t.TempDir())
	w := h.writer(WriterOptions{MaxSize: 1 << 30, Level: zstd.SpeedFastest})
	rng := rand.New(rand.NewPCG(1, 2))
	line := make([]byte, 4096)
	for written := 0; written < 2*PartSize+PartSize/3; written += len(line) {
		for i := range line[:len(line)-1] {
			line[i] = 'a' + byte(rng.IntN(26)) // poorly compressible
		}
		line[len(line)-1] = '\n'
		if err := w.Append(h.clock.Now(), line); err != nil {
			t.Fatal(err)
		}
	}
	w.Close(ReasonStop)
	s := h.seals()[0]
	b, err := os.ReadFile(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if s.Meta.PartSize != PartSize || len(s.Meta.PartMD5s) != (len(b)+PartSize-1)/PartSize || len(s.Meta.PartMD5s) < 2 {
		t.Fatalf("%d bytes: part size %d, %d part sums", len(b), s.Meta.PartSize, len(s.Meta.PartMD5s))
	}
	for i, sum := range s.Meta.PartMD5s {
		part := b[i*PartSize : min(len(b), (i+1)*PartSize)]
		want := md5.Sum(part)
		if sum != base64.StdEncoding.EncodeToString(want[:]) {
			t.Errorf("part %d: sum %s", i, sum)
		}
	}
}
