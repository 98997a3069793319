package driver

// Benchmarks of the whole stream pipeline on a recorded FIFO byte stream:
// framed LogEntry protobufs exactly as Docker writes them, read through
// stream.run (flush before every read, frame decoding, partial reassembly,
// json-file encoding, segment.Writer with zstd at the default level) into a
// real segment.Spool in a temporary folder, ending with a sealed segment.
//
// The lines are internal/loggen's, the same the end-to-end harness (bench/)
// runs in containers: "short" is loggen.ModeSeq, `seq 1 2000000`
// ("1\n".."2000000\n"), "json" is loggen.ModeJSON, 200,000 JSON application
// logs of about 1 KiB. One benchmark
// operation is one whole recorded stream, so MB/s is FIFO bytes (frames,
// headers included) per second. Reported besides:
//
//	records/s      records through the pipeline per wall second
//	rec-MB/s       json-file record bytes written per wall second
//	MB/cpu-s       FIFO bytes per CPU-second of the process (the machine may
//	               be shared; with -cpu 1 it is the one-core figure)
//	allocs/record  heap allocations per record over the timed passes,
//	               per-stream setup (decoder, segment file, sidecar) included
//	ratio          json-file bytes / sealed segment bytes
//	segments/op    segments sealed per stream (64 MiB rotation)
//
// BenchmarkPipelineStages runs the same stream through growing prefixes of
// the pipeline, so the cost of each stage is the difference between rows.
// TestPipelineSteadyStateAllocs asserts the zero-allocation claim.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"github.com/s3logs/s3logs/internal/benchutil"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/driver/fifo"
	"github.com/s3logs/s3logs/driver/logentry"
	"github.com/s3logs/s3logs/driver/record"
	"github.com/s3logs/s3logs/internal/loggen"
	"github.com/s3logs/s3logs/segment"
)

// pipelineStream is one recorded FIFO stream.
type pipelineStream struct {
	data    []byte // framed LogEntry messages
	records int
}

// pipelineKind is a line shape of the benchmarks, named as in their names
// (records=short, records=json), which bench/ parses.
type pipelineKind string

const (
	kindShort pipelineKind = "short" // loggen.ModeSeq
	kindJSON  pipelineKind = "json"  // loggen.ModeJSON
)

// mode is the generator mode of the shape.
func (k pipelineKind) mode() loggen.Mode {
	if k == kindJSON {
		return loggen.ModeJSON
	}
	return loggen.ModeSeq
}

// pipelineWorkloads are the benchmark streams: the workloads.
var pipelineWorkloads = []struct {
	kind  pipelineKind
	lines int
}{
	{kindShort, 2_000_000},
	{kindJSON, 200_000},
}

var (
	recordedMu sync.Mutex
	recorded   = map[string]*pipelineStream{}
)

// recordedStart is the timestamp of every stream's first entry.
var recordedStart = time.Date(2026, 11, 27, 15, 44, 5, 123456789, time.UTC).UnixNano()

// recordStream returns (and caches) the FIFO bytes Docker writes for lines
// lines of kind: one frame per line, stdout, newline stripped, 250 ns apart.
func recordStream(tb testing.TB, kind pipelineKind, lines int) *pipelineStream {
	tb.Helper()
	recordedMu.Lock()
	defer recordedMu.Unlock()
	key := fmt.Sprintf("%s/%d", kind, lines)
	if s := recorded[key]; s != nil {
		return s
	}
	var data, line, msg []byte
	spec := loggen.Spec{Mode: kind.mode(), Lines: lines}
	for i := 0; i < lines; i++ {
		_, line = spec.Append(line[:0], i)
		e := logentry.LogEntry{Source: "stdout", TimeNano: recordedStart + int64(i)*250, Line: line[:len(line)-1]}
		msg = msg[:0]
		if n := e.Size(); cap(msg) < n {
			msg = make([]byte, n)
		}
		msg = msg[:e.Size()]
		if _, err := e.MarshalTo(msg); err != nil {
			tb.Fatal(err)
		}
		data = binary.BigEndian.AppendUint32(data, uint32(len(msg)))
		data = append(data, msg...)
	}
	s := &pipelineStream{data: data, records: lines}
	recorded[key] = s
	return s
}

// benchSpool opens a Spool in dir with the plugin's configuration (ticker on,
// default flush interval); ticker selects whether its goroutine runs.
func benchSpool(tb testing.TB, dir string, ticker bool) *segment.Spool {
	tb.Helper()
	sp, err := segment.Open(segment.Config{
		Root:       dir,
		Logger:     slog.New(slog.DiscardHandler),
		RecordTime: RecordTime,
		NoTicker:   !ticker,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sp.Close() })
	return sp
}

// newBenchStream returns a stream reading src into a new Writer of sp with
// the default segment options (64 MiB, 5 min, default level); onSeal gets
// the sealed segment.
func newBenchStream(tb testing.TB, sp *segment.Spool, src io.Reader, onSeal func(segment.Sealed)) *stream {
	return newBenchStreamLevel(tb, sp, src, zstd.SpeedDefault, onSeal)
}

// newBenchStreamLevel is newBenchStream at a given zstd level.
func newBenchStreamLevel(tb testing.TB, sp *segment.Spool, src io.Reader, level zstd.EncoderLevel, onSeal func(segment.Sealed)) *stream {
	tb.Helper()
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	w, err := sp.NewWriter(segment.WriterOptions{
		Container:   segment.Container{ID: id, Name: "/bench"},
		Destination: segment.Destination{Bucket: "bench"},
		Level:       level,
		Key: func(first time.Time, seq uint64) string {
			return fmt.Sprintf("bench/%s_%d.jsonl.zst", first.UTC().Format("20060102T150405.000Z"), seq)
		},
		OnSeal: onSeal,
	})
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	return &stream{file: "recorded", src: &plainSource{r: src}, w: w, log: log, forget: func() {}, sink: new(sharedCounts)}
}

// BenchmarkPipeline runs recorded FIFO streams through stream.run into a
// sealed segment at the default level, and at the fastest level for
// comparison. Budgets (issue 5, default level, one core, -cpu 1):
// >= 2,000,000 short records/s, >= 300 MB/s of ~1 KiB records, and zero
// allocations per record in steady state.
func BenchmarkPipeline(b *testing.B) {
	levels := []struct {
		name  string
		level zstd.EncoderLevel
	}{{"default", zstd.SpeedDefault}, {"fastest", zstd.SpeedFastest}, {"better", zstd.SpeedBetterCompression}, {"best", zstd.SpeedBestCompression}}
	for _, lv := range levels {
		for _, wl := range pipelineWorkloads {
			b.Run(fmt.Sprintf("level=%s/records=%s/lines=%d", lv.name, wl.kind, wl.lines), func(b *testing.B) {
				rs := recordStream(b, wl.kind, wl.lines)
				sp := benchSpool(b, b.TempDir(), true)
				var last segment.Sealed
				var rawBytes, fileBytes, passRecords, segments int64
				onSeal := func(s segment.Sealed) {
					last = s
					passRecords += s.Meta.Records
					rawBytes += s.Meta.RawBytes
					fileBytes += s.Meta.CompressedBytes
					segments++
					if err := s.Remove(); err != nil {
						b.Error(err)
					}
				}
				pass := func() {
					passRecords = 0
					s := newBenchStreamLevel(b, sp, bytes.NewReader(rs.data), lv.level, onSeal)
					s.run()
					if passRecords != int64(rs.records) || last.Meta.Reason != segment.ReasonStop {
						b.Fatalf("sealed %d records (last reason %q), want %d", passRecords, last.Meta.Reason, rs.records)
					}
				}
				pass() // warm-up: pooled encoder, page cache
				rawBytes, fileBytes, segments = 0, 0, 0
				b.SetBytes(int64(len(rs.data)))
				b.ReportAllocs()
				passes := 0
				m0 := benchutil.Mallocs()
				cpu0 := benchutil.CPUTime()
				for b.Loop() {
					pass()
					passes++
				}
				cpu := benchutil.CPUTime() - cpu0
				m1 := benchutil.Mallocs()
				elapsed := b.Elapsed().Seconds()
				recs := float64(passes * rs.records)
				b.ReportMetric(recs/elapsed, "records/s")
				b.ReportMetric(float64(rawBytes)/1e6/elapsed, "rec-MB/s")
				b.ReportMetric(float64(passes*len(rs.data))/1e6/cpu.Seconds(), "MB/cpu-s")
				b.ReportMetric(float64(m1-m0)/recs, "allocs/record")
				b.ReportMetric(float64(rawBytes)/float64(fileBytes), "ratio")
				b.ReportMetric(float64(segments)/float64(passes), "segments/op")
			})
		}
	}
}

// BenchmarkPipelineStages runs the recorded streams through growing
// prefixes of the pipeline, each stage as stream.run calls it:
//
//	decode    fifo.Decoder with the stream's 64 KiB buffer
//	assemble  + record.Assembler
//	json      + record.AppendJSON into a reused buffer
//	segment   + segment.Writer.Append, Flush before every read, Close (= BenchmarkPipeline)
func BenchmarkPipelineStages(b *testing.B) {
	stages := []string{"decode", "assemble", "json", "segment"}
	for _, wl := range pipelineWorkloads {
		for depth, stage := range stages {
			b.Run(fmt.Sprintf("records=%s/stage=%d-%s", wl.kind, depth+1, stage), func(b *testing.B) {
				rs := recordStream(b, wl.kind, wl.lines)
				var sp *segment.Spool
				if stage == "segment" {
					sp = benchSpool(b, b.TempDir(), true)
				}
				var n int
				var buf []byte
				pass := func() {
					n = 0
					if sp != nil {
						s := newBenchStream(b, sp, bytes.NewReader(rs.data), func(s segment.Sealed) {
							n = int(s.Meta.Records)
							if err := s.Remove(); err != nil {
								b.Error(err)
							}
						})
						s.run()
						return
					}
					dec := fifo.NewDecoder(bytes.NewReader(rs.data), readBufSize)
					asm := record.NewAssembler()
					emit := func(r *record.Record) error {
						if depth >= 2 {
							buf = record.AppendJSON(buf[:0], r, nil)
						}
						n++
						return nil
					}
					var e logentry.LogEntry
					for {
						err := dec.Decode(&e)
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						if depth == 0 {
							n++
							continue
						}
						if err := asm.Add(&e, emit); err != nil {
							b.Fatal(err)
						}
					}
				}
				pass()
				b.SetBytes(int64(len(rs.data)))
				b.ReportAllocs()
				passes := 0
				cpu0 := benchutil.CPUTime()
				for b.Loop() {
					pass()
					if n != rs.records {
						b.Fatalf("%d records, want %d", n, rs.records)
					}
					passes++
				}
				cpu := benchutil.CPUTime() - cpu0
				b.ReportMetric(float64(passes*rs.records)/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(passes*rs.records), "cpu-ns/record")
			})
		}
	}
}

// TestPipelineSteadyStateAllocs checks that the pipeline allocates nothing
// per record once a stream runs. After a warm-up pass over the same stream
// (which grows the pooled encoder's buffers), it counts heap allocations
// between two reads of the recorded stream, a third and the whole of the way
// in, so the stream's setup (decoder, segment file, sidecar) and its sealing
// are outside the window; the window holds tens of reads and flushes. The
// spool's ticker is off so only the stream's goroutine runs.
func TestPipelineSteadyStateAllocs(t *testing.T) {
	if poolDropsItems() {
		t.Skip("sync.Pool drops items at random (race detector): allocation counts are not meaningful")
	}
	for _, tc := range []struct {
		kind  pipelineKind
		lines int
	}{{kindShort, 300_000}, {kindJSON, 30_000}} {
		kind := tc.kind
		t.Run(string(kind), func(t *testing.T) {
			rs := recordStream(t, kind, tc.lines)
			sp := benchSpool(t, t.TempDir(), false)
			// No GC during the test, so the warm-up pass's encoder stays
			// in the spool's pool (sync.Pool drops items at GC) and the
			// measured pass starts with buffers grown to their steady size.
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			var got int64
			onSeal := func(s segment.Sealed) {
				got += s.Meta.Records
				if err := s.Remove(); err != nil {
					t.Error(err)
				}
			}
			newBenchStream(t, sp, bytes.NewReader(rs.data), onSeal).run()
			got = 0
			src := &markingReader{r: bytes.NewReader(rs.data), size: len(rs.data), from: len(rs.data) / 3}
			newBenchStream(t, sp, src, onSeal).run()
			if got != int64(rs.records) {
				t.Fatalf("sealed %d records, want %d", got, rs.records)
			}
			if !src.done {
				t.Fatal("the reader never reached the end of the window")
			}
			recs := countFrames(rs.data, src.fromPos, src.toPos)
			allocs := src.toMallocs - src.fromMallocs
			t.Logf("%s: %d allocations over %d records (%d reads): %.5f per record",
				kind, allocs, recs, src.reads, float64(allocs)/float64(recs))
			if allocs != 0 {
				t.Errorf("%d allocations over %d records in steady state, want 0", allocs, recs)
			}
		})
	}
}

// markingReader reads r and records the heap allocation count at the first
// read at or after offset from and at the read that finds the end.
type markingReader struct {
	r                      *bytes.Reader
	size, from             int
	fromPos, toPos         int
	fromMallocs, toMallocs uint64
	reads                  int
	started, done          bool
}

func (m *markingReader) Read(p []byte) (int, error) {
	pos := m.size - m.r.Len()
	switch {
	case !m.started && pos >= m.from:
		m.started, m.fromPos, m.fromMallocs = true, pos, benchutil.Mallocs()
	case m.started && !m.done && pos == m.size:
		m.done, m.toPos, m.toMallocs = true, pos, benchutil.Mallocs()
	}
	if m.started && !m.done {
		m.reads++
	}
	return m.r.Read(p)
}

// countFrames counts the frames of a recorded stream that start at an
// offset in [from, to).
func countFrames(data []byte, from, to int) int {
	n := 0
	for i := 0; i+4 <= len(data) && i < to; i += 4 + int(binary.BigEndian.Uint32(data[i:])) {
		if i >= from {
			n++
		}
	}
	return n
}

// poolDropsItems reports whether sync.Pool.Put drops items at random, which
// it does under the race detector; encoders and buffers are then rebuilt
// and allocation counts say nothing about the code. (A probe, because a
// build-tagged constant would need a second file.)
func poolDropsItems() bool {
	var p sync.Pool
	lost := 0
	for i := 0; i < 200; i++ {
		p.Put(new(int))
		if p.Get() == nil {
			lost++
		}
	}
	// Without the race detector an item is lost only if the goroutine
	// moved to another P between Put and Get; with it, about 1 in 4.
	return lost > 20
}

// chunkReader returns at most n bytes per Read, like a FIFO that Docker
// fills with one write per log entry while the plugin keeps up.
type chunkReader struct {
	r *bytes.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

// BenchmarkPipelineSmallReads is BenchmarkPipeline (short records, default
// level) with FIFO reads of at most the given size: the stream flushes the
// segment writer (ending a zstd block) before every read, so a reader that
// keeps up with Docker and gets a few entries per read pays a flush for
// those few. The full-size row is BenchmarkPipeline's.
func BenchmarkPipelineSmallReads(b *testing.B) {
	for _, size := range []int{512, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("read=%d", size), func(b *testing.B) {
			rs := recordStream(b, kindShort, 2_000_000)
			sp := benchSpool(b, b.TempDir(), true)
			var recs int64
			onSeal := func(s segment.Sealed) {
				recs += s.Meta.Records
				if err := s.Remove(); err != nil {
					b.Error(err)
				}
			}
			b.SetBytes(int64(len(rs.data)))
			reads := 0
			cpu0 := benchutil.CPUTime()
			for b.Loop() {
				recs = 0
				newBenchStream(b, sp, &chunkReader{r: bytes.NewReader(rs.data), n: size}, onSeal).run()
				if recs != int64(rs.records) {
					b.Fatalf("sealed %d records, want %d", recs, rs.records)
				}
				reads += (len(rs.data) + size - 1) / size
			}
			cpu := benchutil.CPUTime() - cpu0
			n := float64(reads) / float64((len(rs.data)+size-1)/size) * float64(rs.records)
			b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(cpu.Seconds()/n*1e6, "cpu-s/1M-records")
			b.ReportMetric(float64(rs.records)/float64((len(rs.data)+size-1)/size), "records/read")
		})
	}
}
