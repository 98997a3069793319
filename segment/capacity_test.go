package segment

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// sealN seals n segments of about size compressed bytes each, oldest first.
func sealN(t *testing.T, h *harness, n int) []Sealed {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	w := h.writer(WriterOptions{MaxSize: 64 << 10})
	for len(h.seals()) < n {
		rec := fmt.Appendf(nil, "%016x%016x%016x\n", rng.Uint64(), rng.Uint64(), rng.Uint64())
		h.clock.Add(time.Millisecond)
		if err := w.Append(h.clock.Now(), rec); err != nil {
			t.Fatal(err)
		}
	}
	w.Close(ReasonStop)
	return h.seals()[:n]
}

func TestDropOldestWhenOverLimit(t *testing.T) {
	h := newHarness(t, t.TempDir())
	seals := sealN(t, h, 6)
	var total int64
	for _, s := range h.seals() {
		total += s.Meta.CompressedBytes
	}
	h.spool.jan.limit = total / 2
	h.spool.jan.visit()
	left, _ := ScanSealed(h.root)
	if len(left) == 0 || len(left) >= len(h.seals()) {
		t.Fatalf("%d of %d segments left", len(left), len(h.seals()))
	}
	// The oldest went, the newest stayed, and usage is under the limit.
	if _, err := os.Stat(seals[0].Path()); !errors.Is(err, os.ErrNotExist) {
		t.Error("oldest segment not dropped")
	}
	last := h.seals()[len(h.seals())-1]
	if _, err := os.Stat(last.Path()); err != nil {
		t.Error("newest segment dropped")
	}
	if u := h.spool.jan.measure(); u.bytes > h.spool.jan.limit {
		t.Errorf("usage %d over the limit %d after dropping", u.bytes, h.spool.jan.limit)
	}
	if h.spool.Dropped() != int64(len(h.seals())-len(left)) {
		t.Errorf("Dropped() = %d", h.spool.Dropped())
	}
}

func TestBlockPolicyWaitsForSpace(t *testing.T) {
	h := newHarness(t, t.TempDir())
	sealN(t, h, 3)
	h.spool.jan.policy = PolicyBlock
	h.spool.jan.limit = 1
	h.spool.jan.visit()
	w := h.writer(WriterOptions{})
	defer w.Close(ReasonStop)
	done := make(chan error, 1)
	go func() { done <- w.Append(h.clock.Now(), record(1)) }()
	select {
	case err := <-done:
		t.Fatalf("Append did not wait on a full spool: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	// Uploads free the space.
	for _, s := range h.seals() {
		s.Remove()
	}
	h.spool.jan.limit = 1 << 30
	h.spool.jan.visit()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Append still waiting after space was freed")
	}
	// Close releases waiters for good.
	h.spool.jan.limit = 1
	h.spool.jan.visit()
	h.spool.Close()
	if err := w.Append(h.clock.Now(), record(2)); err != nil {
		t.Fatal(err)
	}
}

func TestParsePolicy(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{{"drop-oldest", true}, {"block", true}, {"", false}, {"drop", false}, {"BLOCK", false}} {
		if _, err := ParsePolicy(c.in); (err == nil) != c.ok {
			t.Errorf("ParsePolicy(%q) = %v", c.in, err)
		}
	}
}

// TestDiskFull writes into a tiny tmpfs until ENOSPC: Append fails without
// crashing, the segment is abandoned and later repaired, drop-oldest frees
// room, and writing resumes.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	root := filepath.Join(dir, "segments")
	h := &harness{t: t, root: root, clock: &fakeClock{t: time.Date(2026, 11, 27, 15, 44, 5, 0, time.UTC)}}
	var recovered []Sealed
	sp, err := Open(Config{Root: root, Now: h.clock.Now, NoTicker: true, Logger: slog.New(slog.DiscardHandler),
		MinFree: 1, OnRecovered: func(s Sealed) { recovered = append(recovered, s) }})
	if err != nil {
		t.Fatal(err)
	}
	h.spool = sp
	defer sp.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	w := h.writer(WriterOptions{MaxSize: 128 << 10})
	var full error
	accepted := int64(0)
	for i := 0; i < 100000 && full == nil; i++ {
		rec := fmt.Appendf(nil, "%016x%016x%016x%016x\n", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
		full = w.Append(h.clock.Now(), rec)
		if full == nil || errors.Is(full, ErrAbandoned) {
			accepted++
		}
		if full == nil && i%50 == 0 {
			full = w.Flush()
		}
	}
	if !isNoSpace(full) || !errors.Is(full, ErrAbandoned) {
		t.Fatalf("filling a 1 MiB tmpfs ended with %v, want ENOSPC abandoning the segment", full)
	}
	sp.jan.mu.Lock()
	abandoned := len(sp.jan.abandoned)
	sp.jan.mu.Unlock()
	if abandoned != 1 {
		t.Fatalf("%d abandoned segments, want 1", abandoned)
	}
	// drop-oldest with a limit frees room, then the abandoned segment is
	// repaired and sealed.
	sp.jan.limit = 256 << 10
	sp.jan.visit()
	if sp.Dropped() == 0 {
		t.Fatal("nothing dropped on a full disk")
	}
	if len(recovered) != 1 || recovered[0].Meta.Reason != ReasonRecovered {
		t.Fatalf("recovered %+v", recovered)
	}
	// Every accepted record is in a sealed segment, or counted as lost.
	var sealedRecs int64
	for _, s := range h.seals() {
		sealedRecs += s.Meta.Records
	}
	if got := sealedRecs + recovered[0].Meta.Records + sp.LostOnError(); got != accepted {
		t.Fatalf("%d records sealed + %d repaired + %d lost = %d, want %d accepted",
			sealedRecs, recovered[0].Meta.Records, sp.LostOnError(), got, accepted)
	}
	b := decodeFile(t, recovered[0].Path())
	if len(b) == 0 || b[len(b)-1] != '\n' || int64(bytes.Count(b, []byte("\n"))) != recovered[0].Meta.Records {
		t.Fatal("repaired segment is not whole records")
	}
	if err := w.Append(h.clock.Now(), record(1)); err != nil {
		t.Fatalf("Append after room was made: %v", err)
	}
	w.Close(ReasonStop)
}

func TestWritesPokeTheJanitorAtTheLimit(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.spool.jan.limit = 4 << 10
	h.spool.jan.measure()
	w := h.writer(WriterOptions{})
	defer w.Close(ReasonStop)
	select {
	case <-h.spool.jan.kick:
		t.Fatal("poked before anything was written")
	default:
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		w.Append(h.clock.Now(), fmt.Appendf(nil, "%016x%016x\n", rng.Uint64(), rng.Uint64()))
	}
	w.Flush()
	select {
	case <-h.spool.jan.kick:
	default:
		t.Fatal("writing past the limit did not poke the janitor")
	}
}
