package segment

// Benchmarks of the segment writer on the generated corpora (corpus_test.go).
//
// Each benchmark operation is one pass over a whole corpus (-corpus-size,
// default 16 MiB, far larger than the 512 KiB window, so repeated passes do
// not compress better than one), so MB/s is input bytes per second. They
// also report records/s, the compression ratio (input bytes / file bytes)
// and allocs/record, counted from runtime.MemStats over the timed passes
// after one untimed warm-up pass, which opens the segment and takes the
// encoder.
//
// Input is flushed as the driver does: the driver flushes the Writer before
// every read of the FIFO, and under load a read returns a full pipe, 64 KiB
// of input; the benchmarks flush after every 64 KiB of records.

import (
	"fmt"
	"github.com/s3logs/s3logs/internal/benchutil"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// benchFlushEvery is the input between two flushes: one FIFO read under load.
const benchFlushEvery = 64 << 10

// benchLevels are the zstd levels the writer offers, by name.
var benchLevels = []struct {
	name  string
	level zstd.EncoderLevel
}{
	{"fastest", zstd.SpeedFastest},
	{"default", zstd.SpeedDefault},
	{"better", zstd.SpeedBetterCompression},
	{"best", zstd.SpeedBestCompression},
}

// benchWriter opens a spool in a temporary folder and a Writer at level with
// no rotation; sealed receives the segment's Sealed when the Writer closes.
func benchWriter(tb testing.TB, root, id string, level zstd.EncoderLevel) (*Spool, *Writer, *Sealed) {
	tb.Helper()
	sp, err := Open(Config{Root: root, NoTicker: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sp.Close() })
	sealed := new(Sealed)
	w, err := sp.NewWriter(WriterOptions{
		Container:   Container{ID: id, Name: "/bench"},
		Destination: Destination{Bucket: "logs"},
		MaxSize:     1 << 50,
		MaxAge:      1000 * time.Hour,
		Level:       level,
		Key: func(first time.Time, seq uint64) string {
			return fmt.Sprintf("bench/%s_%s_%06d.jsonl.zst", first.UTC().Format("20060102T150405.000Z"), id, seq)
		},
		OnSeal: func(s Sealed) { *sealed = s },
	})
	if err != nil {
		tb.Fatal(err)
	}
	return sp, w, sealed
}

// appendPass appends every record of c to w, flushing every flushEvery bytes
// and at the end.
func appendPass(tb testing.TB, w *Writer, c *corpus, flushEvery int) {
	pending := 0
	for i, rec := range c.recs {
		if err := w.Append(c.times[i], rec); err != nil {
			tb.Fatal(err)
		}
		if pending += len(rec); pending >= flushEvery {
			if err := w.Flush(); err != nil {
				tb.Fatal(err)
			}
			pending = 0
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkAppend measures Writer.Append throughput at each level on the
// short-record and the 1 KiB corpus, flushing every 64 KiB like the driver.
func BenchmarkAppend(b *testing.B) {
	for _, kind := range []string{corpusShort, corpusKiB} {
		for _, lv := range benchLevels {
			b.Run("corpus="+kind+"/level="+lv.name, func(b *testing.B) {
				c := loadCorpus(kind, *corpusSize)
				_, w, sealed := benchWriter(b, b.TempDir(), "bench-"+kind, lv.level)
				appendPass(b, w, c, benchFlushEvery) // warm-up
				b.SetBytes(int64(len(c.data)))
				b.ReportAllocs()
				passes := 0
				m0 := benchutil.Mallocs()
				cpu0 := benchutil.CPUTime()
				for b.Loop() {
					appendPass(b, w, c, benchFlushEvery)
					passes++
				}
				cpu := benchutil.CPUTime() - cpu0
				m1 := benchutil.Mallocs()
				elapsed := b.Elapsed()
				if err := w.Close(ReasonStop); err != nil {
					b.Fatal(err)
				}
				recs := float64(passes * len(c.recs))
				b.ReportMetric(recs/elapsed.Seconds(), "records/s")
				b.ReportMetric(float64(passes*len(c.data))/1e6/cpu.Seconds(), "MB/cpu-s")
				b.ReportMetric(float64(m1-m0)/recs, "allocs/record")
				b.ReportMetric(float64(sealed.Meta.RawBytes)/float64(sealed.Meta.CompressedBytes), "ratio")
			})
		}
	}
}

// BenchmarkLayout compares segment layouts at the default level, with the
// encoder options the Spool uses, writing to a file on disk:
//
//   - frame-per-burst (the chosen one): one frame while the stream is busy,
//     Encoder.Flush after every batch (ends a block, keeps the window);
//   - frame-per-batch: Encoder.Close and Reset after every batch, so every
//     batch is a frame of its own starting with an empty window;
//   - one-frame: one frame for everything, no flush (the ratio ceiling,
//     but nothing reaches the file before a 128 KiB block fills).
//
// A batch is 64 KiB (a full pipe under load) or 4 KiB (a lightly logging
// container whose reads return little).
func BenchmarkLayout(b *testing.B) {
	type layout struct {
		name  string
		batch int
		// endBatch is called after each batch.
		endBatch func(e *zstd.Encoder, w io.Writer) error
	}
	flush := func(e *zstd.Encoder, _ io.Writer) error { return e.Flush() }
	newFrame := func(e *zstd.Encoder, w io.Writer) error {
		err := e.Close()
		e.Reset(w)
		return err
	}
	layouts := []layout{
		{"frame-per-burst/batch=64KiB", 64 << 10, flush},
		{"frame-per-batch/batch=64KiB", 64 << 10, newFrame},
		{"frame-per-burst/batch=4KiB", 4 << 10, flush},
		{"frame-per-batch/batch=4KiB", 4 << 10, newFrame},
		{"one-frame", 0, nil},
	}
	for _, kind := range []string{corpusShort, corpusKiB} {
		for _, l := range layouts {
			b.Run("corpus="+kind+"/layout="+l.name, func(b *testing.B) {
				c := loadCorpus(kind, *corpusSize)
				f, err := os.OpenFile(filepath.Join(b.TempDir(), "layout.zst"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				cw := &countingWriter{f: f}
				enc, err := newEncoder(zstd.SpeedDefault, cw)
				if err != nil {
					b.Fatal(err)
				}
				pass := func() {
					pending := 0
					for _, rec := range c.recs {
						if _, err := enc.Write(rec); err != nil {
							b.Fatal(err)
						}
						if pending += len(rec); l.endBatch != nil && pending >= l.batch {
							if err := l.endBatch(enc, cw); err != nil {
								b.Fatal(err)
							}
							pending = 0
						}
					}
				}
				pass() // warm-up
				raw := int64(len(c.data))
				b.SetBytes(int64(len(c.data)))
				b.ReportAllocs()
				passes := 0
				cpu0 := benchutil.CPUTime()
				for b.Loop() {
					pass()
					passes++
				}
				cpu := benchutil.CPUTime() - cpu0
				elapsed := b.Elapsed()
				if err := enc.Close(); err != nil {
					b.Fatal(err)
				}
				raw *= int64(passes + 1)
				b.ReportMetric(float64(passes*len(c.recs))/elapsed.Seconds(), "records/s")
				b.ReportMetric(float64(passes*len(c.data))/1e6/cpu.Seconds(), "MB/cpu-s")
				b.ReportMetric(float64(raw)/float64(cw.size()), "ratio")
			})
		}
	}
}

// TestAppendAllocs checks the benchmarks' claim in a test: once a segment is
// open and its encoder taken, Append and Flush allocate nothing, whatever the
// level.
func TestAppendAllocs(t *testing.T) {
	c := loadCorpus(corpusShort, 1<<20)
	for _, lv := range benchLevels {
		t.Run(lv.name, func(t *testing.T) {
			_, w, _ := benchWriter(t, t.TempDir(), "allocs-"+lv.name, lv.level)
			defer w.Close(ReasonStop)
			appendPass(t, w, c, benchFlushEvery) // opens the segment, grows the buffers
			i := 0
			allocs := testing.AllocsPerRun(2000, func() {
				k := i % len(c.recs)
				if err := w.Append(c.times[k], c.recs[k]); err != nil {
					t.Fatal(err)
				}
				if i++; i%200 == 0 {
					if err := w.Flush(); err != nil {
						t.Fatal(err)
					}
				}
			})
			if allocs != 0 {
				t.Errorf("Append+Flush allocate %.3f times per record in steady state, want 0", allocs)
			}
		})
	}
}
