package segment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
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
	if b, _ := h.spool.acct.sealed(); b > h.spool.jan.limit {
		t.Errorf("sealed bytes %d over the limit %d after dropping", b, h.spool.jan.limit)
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

// TestSealingPokesTheJanitorAtTheLimit: the janitor hears at once of a seal
// that takes the sealed bytes to the limit, not at its next visit.
func TestSealingPokesTheJanitorAtTheLimit(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.spool.acct.limit = 4 << 10
	w := h.writer(WriterOptions{MaxSize: 1 << 20})
	defer w.Close(ReasonStop)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		w.Append(h.clock.Now(), fmt.Appendf(nil, "%016x%016x\n", rng.Uint64(), rng.Uint64()))
	}
	w.Flush()
	select {
	case <-h.spool.jan.kick:
		t.Fatal("writing into an open segment poked the janitor: only sealed bytes count")
	default:
	}
	h.clock.Add(DefaultMaxAge)
	h.spool.Tick()
	if len(h.seals()) != 1 {
		t.Fatal("not sealed")
	}
	select {
	case <-h.spool.jan.kick:
	default:
		t.Fatal("sealing past the limit did not poke the janitor")
	}
}

// TestWritesPokeTheJanitorWhenTheDiskFills: writes count down the free space
// the last visit saw, and poke the janitor once it is used up.
func TestWritesPokeTheJanitorWhenTheDiskFills(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.spool.jan.visit()
	w := h.writer(WriterOptions{})
	defer w.Close(ReasonStop)
	w.Append(h.clock.Now(), record(1))
	w.Flush()
	select {
	case <-h.spool.jan.kick:
		t.Fatal("poked with plenty of room")
	default:
	}
	h.spool.jan.headroom.Store(100)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		w.Append(h.clock.Now(), fmt.Appendf(nil, "%016x%016x\n", rng.Uint64(), rng.Uint64()))
	}
	w.Flush()
	select {
	case <-h.spool.jan.kick:
	default:
		t.Fatal("writing past the free space did not poke the janitor")
	}
}

// logCounter is a slog.Handler counting records by message.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
	all  []string
}

func newLogCounter() *logCounter { return &logCounter{msgs: map[string]int{}} }

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	c.msgs[r.Message]++
	c.all = append(c.all, r.Message)
	c.mu.Unlock()
	return nil
}
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCounter) WithGroup(string) slog.Handler      { return c }

// count returns how many records had a message starting with prefix.
func (c *logCounter) count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for m, k := range c.msgs {
		if strings.HasPrefix(m, prefix) {
			n += k
		}
	}
	return n
}

// TestManyWritersHealthyUploaderNothingDropped is the spool at its worst
// moment for the old accounting: 200 streams whose open segments together
// hold more than the limit, drop-oldest, and an uploader that removes every
// segment as soon as it is sealed. Open segments do not count, so nothing
// is dropped; the janitor visits at its pace (not once per write) and never
// walks the spool. (The streams fill at staggered offsets, as real ones do:
// 200 segments sealed at the same instant would exceed the limit by
// themselves, which is what CheckCapacity warns about.)
func TestManyWritersHealthyUploaderNothingDropped(t *testing.T) {
	const (
		writers = 200
		maxSize = 16 << 10
		limit   = 1 << 20  // open segments hold up to writers*maxSize = 3.2 MiB
		perW    = 40 << 10 // input per writer: two or three segments each
	)
	root := t.TempDir()
	logs := newLogCounter()
	flush := 20 * time.Millisecond
	sp, err := Open(Config{Root: root, Logger: slog.New(logs), Limit: limit, Policy: PolicyDropOldest, FlushInterval: flush})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	walks0 := sp.jan.walks.Load()

	// The fake uploader: a few workers removing each segment once sealed.
	queue := make(chan Sealed, 4096)
	var removed, sealed atomic.Int64
	var upWG sync.WaitGroup
	for range 4 {
		upWG.Add(1)
		go func() {
			defer upWG.Done()
			for s := range queue {
				if err := s.Remove(); err != nil {
					t.Error(err)
				}
				removed.Add(1)
			}
		}()
	}
	ws := make([]*Writer, writers)
	for i := range ws {
		id := fmt.Sprintf("c%03d", i)
		ws[i], err = sp.NewWriter(WriterOptions{
			Container:   Container{ID: id},
			Destination: Destination{Bucket: "logs"},
			MaxSize:     maxSize,
			Level:       zstd.SpeedFastest,
			Key:         func(first time.Time, seq uint64) string { return fmt.Sprintf("%s/%d", id, seq) },
			OnSeal:      func(s Sealed) { sealed.Add(1); queue <- s },
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	const goroutines = 8
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			rec := make([]byte, 0, 128)
			appendTo := func(i int) bool {
				rec = fmt.Appendf(rec[:0], "%016x%016x%016x%016x\n", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
				if err := ws[i].Append(time.Now(), rec); err != nil {
					t.Error(err)
					return false
				}
				return true
			}
			// Stagger: writer i starts i/writers of a segment in.
			for i := g; i < writers; i += goroutines {
				for n := 0; n < i*maxSize/writers; n += len(rec) {
					if !appendTo(i) {
						return
					}
				}
			}
			for written := 0; written < perW; written += len(rec) {
				for i := g; i < writers; i += goroutines {
					if !appendTo(i) {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for removed.Load() < sealed.Load() {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	dropped, walks, visits := sp.Dropped(), sp.jan.walks.Load()-walks0, sp.jan.visits.Load()
	fullLines := logs.count("spool full") + logs.count("spool still")
	// Closing every stream at once seals 200 segments together: not part of
	// the steady state measured above.
	for _, w := range ws {
		if err := w.Close(ReasonStop); err != nil {
			t.Fatal(err)
		}
	}
	close(queue)
	upWG.Wait()

	if dropped != 0 {
		t.Errorf("%d segments dropped while the uploader kept up", dropped)
	}
	if fullLines != 0 {
		t.Errorf("%d spool-full lines, messages %v", fullLines, logs.all[:min(5, len(logs.all))])
	}
	if n := logs.count("spool limit is smaller"); n != 1 {
		t.Errorf("%d capacity warnings, want 1 (from NewWriter)", n)
	}
	if sealed.Load() < writers*2 || removed.Load() != sealed.Load() {
		t.Errorf("%d sealed, %d removed", sealed.Load(), removed.Load())
	}
	if walks != 0 {
		t.Errorf("the janitor walked the spool %d times in steady state", walks)
	}
	// Visits come from the ticker (one per flush interval), not from writes.
	if most := int64(elapsed/flush) + 10; visits > most {
		t.Errorf("%d janitor visits in %v, want at most %d", visits, elapsed, most)
	}
	if b, _ := sp.acct.sealed(); b != 0 {
		t.Errorf("ledger holds %d sealed bytes after every segment was removed", b)
	}
	t.Logf("%d writers sealed %d segments in %v; %d janitor visits, %d walks, %d dropped",
		writers, sealed.Load(), elapsed.Round(time.Millisecond), visits, walks, dropped)
}

// TestJanitorWalksOnlyToCorrect: with a fake clock, visits in steady state
// do not walk the spool; one minute later a visit walks it once to correct
// the ledger, and picks up removals it was not told about.
func TestJanitorWalksOnlyToCorrect(t *testing.T) {
	h := newHarness(t, t.TempDir())
	h.spool.jan.limit = 1 << 30
	w0 := h.spool.jan.walks.Load()
	seals := sealN(t, h, 4)
	for range 10 {
		h.clock.Add(time.Second)
		h.spool.jan.visit()
	}
	if n := h.spool.jan.walks.Load() - w0; n != 0 {
		t.Fatalf("%d walks in steady state", n)
	}
	// Removed behind the ledger's back (as a Sealed built elsewhere is).
	os.Remove(seals[0].Path())
	os.Remove(seals[0].MetaPath())
	before, _ := h.spool.acct.sealed()
	h.clock.Add(correctEvery)
	h.spool.jan.visit()
	if n := h.spool.jan.walks.Load() - w0; n != 1 {
		t.Fatalf("%d walks after a minute, want 1", n)
	}
	after, _ := h.spool.acct.sealed()
	fi, _ := os.Stat(seals[1].Path())
	if after >= before || after < 3*fi.Size() {
		t.Fatalf("ledger %d bytes before the correction, %d after", before, after)
	}
}

// TestStaleLedgerIsConfirmedBeforeDropping: removals the ledger did not
// hear of (segments listed by the package-level ScanSealed) make it look
// full; the janitor walks before it drops anything, and drops nothing.
func TestStaleLedgerIsConfirmedBeforeDropping(t *testing.T) {
	h := newHarness(t, t.TempDir())
	sealN(t, h, 6)
	total, _ := h.spool.acct.sealed()
	h.spool.jan.limit = total / 2
	listed, err := ScanSealed(h.root)
	if err != nil || len(listed) < 6 {
		t.Fatalf("ScanSealed = %d, %v", len(listed), err)
	}
	for _, s := range listed[:5] {
		s.Remove() // not told to the ledger
	}
	if b, _ := h.spool.acct.sealed(); b != total {
		t.Fatalf("ledger %d, want the stale %d", b, total)
	}
	h.spool.jan.visit()
	if n := h.spool.Dropped(); n != 0 {
		t.Fatalf("%d segments dropped on a stale ledger", n)
	}
	if _, err := os.Stat(listed[5].Path()); err != nil {
		t.Fatal("the last segment is gone")
	}
}

// TestSpoolFullLogsAreRateLimited: a disk that stays full with nothing to
// drop logs "still full" once per 30 s and walks no more than to confirm.
func TestSpoolFullLogsAreRateLimited(t *testing.T) {
	logs := newLogCounter()
	clock := &fakeClock{t: time.Date(2026, 11, 27, 15, 44, 5, 0, time.UTC)}
	sp, err := Open(Config{Root: t.TempDir(), Now: clock.Now, NoTicker: true, Logger: slog.New(logs), MinFree: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	w0 := sp.jan.walks.Load()
	for range 100 {
		clock.Add(100 * time.Millisecond)
		sp.jan.visit()
	}
	if n := logs.count("spool still full"); n != 1 {
		t.Fatalf("%d \"still full\" lines in 10 s, want 1", n)
	}
	if n := sp.jan.walks.Load() - w0; n > 4 {
		t.Fatalf("%d walks in 10 s of a full disk with nothing to drop", n)
	}
	clock.Add(fullLogEvery)
	sp.jan.visit()
	if n := logs.count("spool still full"); n != 2 {
		t.Fatalf("%d \"still full\" lines after 30 s more, want 2", n)
	}
}

// TestManyDropsAreSummarised: one visit dropping many segments logs the
// first few one by one and the rest in one line.
func TestManyDropsAreSummarised(t *testing.T) {
	logs := newLogCounter()
	h := newHarness(t, t.TempDir())
	h.spool.jan.log = slog.New(logs)
	sealN(t, h, 20)
	h.spool.jan.limit = 1
	h.spool.jan.visit()
	if n := h.spool.Dropped(); n != 20 {
		t.Fatalf("dropped %d of 20", n)
	}
	if n := logs.count("spool full: dropped the oldest"); n != maxDropLines {
		t.Errorf("%d single drop lines, want %d", n, maxDropLines)
	}
	if n := logs.count("spool full: dropped more"); n != 1 {
		t.Errorf("%d summary lines, want 1", n)
	}
}

func TestCheckCapacity(t *testing.T) {
	logs := newLogCounter()
	clock := &fakeClock{t: time.Date(2026, 11, 27, 15, 44, 5, 0, time.UTC)}
	sp, err := Open(Config{Root: t.TempDir(), Now: clock.Now, NoTicker: true, Logger: slog.New(logs), Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if !sp.CheckCapacity(4, 256<<10) || logs.count("spool limit") != 0 {
		t.Fatal("4 × 256 KiB does not exceed 1 MiB")
	}
	if sp.CheckCapacity(5, 256<<10) || logs.count("spool limit") != 1 {
		t.Fatal("5 × 256 KiB exceeds 1 MiB: want false and a warning")
	}
	// NewWriter checks the open Writers, warning at most every 10 minutes.
	key := func(time.Time, uint64) string { return "k" }
	var ws []*Writer
	for i := range 8 {
		w, err := sp.NewWriter(WriterOptions{Container: Container{ID: fmt.Sprintf("c%d", i)}, MaxSize: 256 << 10, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	if n := logs.count("spool limit"); n != 2 {
		t.Fatalf("%d warnings after 8 Writers of 256 KiB, want 2 (one from NewWriter)", n)
	}
	clock.Add(capWarnEvery)
	w, _ := sp.NewWriter(WriterOptions{Container: Container{ID: "c9"}, MaxSize: 256 << 10, Key: key})
	if n := logs.count("spool limit"); n != 3 {
		t.Fatalf("%d warnings 10 minutes later, want 3", n)
	}
	for _, w := range append(ws, w) {
		w.Close(ReasonStop)
	}
}
