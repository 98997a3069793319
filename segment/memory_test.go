package segment

import (
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Memory budgets per stream, from the storage issue: an idle stream retains
// at most 256 KiB, an active one at most 4 MiB.
const (
	idleWriterBudget   = 256 << 10
	activeWriterBudget = 4 << 20
)

// activeBound is the bound TestMemoryActiveWriter enforces per level. At
// fastest and default it is the budget. At better and best the
// encoder's match tables alone exceed it: klauspost/compress sizes them by
// level, not by window (better: a 2^19-entry long table of 8-byte entries,
// 4 MiB; best: 2^22 + 2^18 entries, 34 MiB), so those levels are held to the
// tables plus 3 MiB (window, history and block buffers take about 1 MiB at
// every level), which still catches a regression in what this package adds.
func activeBound(level zstd.EncoderLevel) int64 {
	switch level {
	case zstd.SpeedBetterCompression:
		return 4<<20 + 3<<20
	case zstd.SpeedBestCompression:
		return 34<<20 + 3<<20
	}
	return activeWriterBudget
}

// heapInuse collects garbage twice (a sync.Pool keeps its items through one
// collection, in its victim cache) and returns the heap in use.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// memSpool opens a spool driven by a fake clock.
func memSpool(t *testing.T) (*Spool, *fakeClock) {
	t.Helper()
	clock := &fakeClock{t: corpusStart}
	sp, err := Open(Config{Root: t.TempDir(), Now: clock.Now, NoTicker: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	return sp, clock
}

func memWriter(t *testing.T, sp *Spool, id string, level zstd.EncoderLevel) *Writer {
	t.Helper()
	w, err := sp.NewWriter(WriterOptions{
		Container:   Container{ID: id, Name: "/" + id, ImageName: "example/app:1.4.2"},
		Destination: Destination{Bucket: "logs", Region: "eu-central-1"},
		Level:       level,
		MaxAge:      time.Hour,
		Key: func(first time.Time, seq uint64) string {
			return fmt.Sprintf("%s/%s_%s_%06d.jsonl.zst", id, first.UTC().Format("20060102T150405.000Z"), id, seq)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(ReasonShutdown) })
	return w
}

// TestMemoryIdleWriter measures the heap retained by Writers of streams that
// logged a few records and then went quiet for longer than the flush
// interval: their segments stay open, their encoders go back to the pool
// (which the next collections empty). Each must retain at most 256 KiB.
// Streams go quiet one after the other, so the next one reuses the pooled
// encoder and the test holds one encoder at a time (35 MiB at best).
func TestMemoryIdleWriter(t *testing.T) {
	const writers = 200
	c := loadCorpus(corpusShort, 1<<20)
	for _, lv := range benchLevels {
		t.Run(lv.name, func(t *testing.T) {
			sp, clock := memSpool(t)
			before := heapInuse()
			ws := make([]*Writer, writers)
			for i := range ws {
				ws[i] = memWriter(t, sp, fmt.Sprintf("idle-%s-%03d", lv.name, i), lv.level)
				for j := range 5 {
					k := (i*5 + j) % len(c.recs)
					if err := ws[i].Append(c.times[k], c.recs[k]); err != nil {
						t.Fatal(err)
					}
				}
				if err := ws[i].Flush(); err != nil {
					t.Fatal(err)
				}
				clock.Add(DefaultFlushInterval + time.Millisecond)
				sp.Tick()
			}
			for i, w := range ws {
				w.mu.Lock()
				open, enc := w.cur != nil, w.cur != nil && w.cur.enc != nil
				w.mu.Unlock()
				if !open || enc {
					t.Fatalf("writer %d after idling: segment open %v (want true), encoder held %v (want false)", i, open, enc)
				}
			}
			after := heapInuse()
			runtime.KeepAlive(ws)
			per := (int64(after) - int64(before)) / writers
			t.Logf("level %s: %d idle writers retain %d KiB of heap, %.1f KiB each (budget %d KiB)",
				lv.name, writers, (int64(after)-int64(before))>>10, float64(per)/1024, idleWriterBudget>>10)
			if per > idleWriterBudget {
				t.Errorf("an idle writer retains %d bytes, budget %d", per, idleWriterBudget)
			}
		})
	}
}

// TestMemoryActiveWriter measures the heap held by Writers of streams that
// are logging: each has appended 2 MiB (four windows) of records with a flush
// every 64 KiB, and holds its encoder. Each must hold at most 4 MiB at the
// fastest and default levels, see activeBound for better and best.
func TestMemoryActiveWriter(t *testing.T) {
	const (
		writers = 8
		input   = 2 << 20
	)
	c := loadCorpus(corpusShort, 4<<20)
	for _, lv := range benchLevels {
		t.Run(lv.name, func(t *testing.T) {
			sp, _ := memSpool(t)
			before := heapInuse()
			ws := make([]*Writer, writers)
			for i := range ws {
				ws[i] = memWriter(t, sp, fmt.Sprintf("active-%s-%03d", lv.name, i), lv.level)
				pending, total := 0, 0
				// Each writer starts elsewhere in the corpus.
				for k := i * len(c.recs) / writers; total < input; k = (k + 1) % len(c.recs) {
					if err := ws[i].Append(c.times[k], c.recs[k]); err != nil {
						t.Fatal(err)
					}
					pending += len(c.recs[k])
					total += len(c.recs[k])
					if pending >= benchFlushEvery {
						if err := ws[i].Flush(); err != nil {
							t.Fatal(err)
						}
						pending = 0
					}
				}
			}
			for i, w := range ws {
				w.mu.Lock()
				enc := w.cur != nil && w.cur.enc != nil
				w.mu.Unlock()
				if !enc {
					t.Fatalf("active writer %d holds no encoder", i)
				}
			}
			after := heapInuse()
			runtime.KeepAlive(ws)
			per := (int64(after) - int64(before)) / writers
			bound := activeBound(lv.level)
			t.Logf("level %s: %d active writers hold %d KiB of heap, %.0f KiB each (issue budget %d KiB, enforced %d KiB)",
				lv.name, writers, (int64(after)-int64(before))>>10, float64(per)/1024, activeWriterBudget>>10, bound>>10)
			if per > bound {
				t.Errorf("an active writer holds %d bytes, bound %d", per, bound)
			}
		})
	}
}
