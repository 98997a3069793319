package fifo

import (
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/s3logs/s3logs/driver/logentry"
)

// sweepCuts is the number of cut points TestResyncSweep tests in total; it
// must be at least a million without the race detector.
var sweepCuts atomic.Int64

// TestResyncSweep is the deterministic counterpart of FuzzResync: it cuts
// recorded streams of the four shapes at every byte offset (at a stride over
// the ~1 MB lines, densely around their headers), decodes each suffix in
// resync mode and counts false frames, which must be 0. Each suffix ends one
// frame after the boundary the decoder must find, so that frame is checked
// against the header that follows it, and the one after it is decoded too.
// Under the race detector it tests a tenth of the cuts (see race_test.go).
func TestResyncSweep(t *testing.T) {
	plans := []struct {
		name   string
		rec    *recording
		stride int // test every stride-th cut, and every byte near headers
	}{
		{"short/text", shortLines(12000, false), 1},
		{"short/binary", shortLines(3000, true), 1},
		{"json1k/text", jsonLines(280, false), 1},
		{"json1k/binary", jsonLines(60, true), 1},
		{"partial16k/text", partialLines(2, false), 1},
		{"line1m/text", hugeLines(3, false), 4093},
		{"line1m/binary", hugeLines(2, true), 8191},
	}
	t.Cleanup(func() {
		n := sweepCuts.Load()
		t.Logf("%d cut points tested (race detector: %v)", n, raceEnabled)
		if !raceEnabled && n < 1_000_000 && !testing.Short() && !t.Failed() {
			t.Errorf("only %d cut points tested, want at least 1,000,000", n)
		}
	})
	for _, p := range plans {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			stride := p.stride * sweepStrideFactor
			if testing.Short() {
				stride *= 10
			}
			rec := p.rec
			d := NewDecoderOptions(nil, Options{BufSize: 64 << 10, Now: testNow})
			var rd bytes.Reader
			src := &chunkReader{r: &rd}
			var e logentry.LogEntry
			var cuts, falseFrames, failures int
			test := func(c int) {
				cuts++
				j := rec.boundary(c)
				last := min(j+2, len(rec.entries))
				rd.Reset(rec.data[c:rec.offs[last]])
				src.n = 0
				if c%5 == 4 { // some pipe-like reads
					src.n = 1 + c%509
				}
				msg, isFalse := checkCut(d, src, rec, c, last, &e)
				if msg == "" {
					return
				}
				if isFalse {
					falseFrames++
				} else {
					failures++
				}
				if falseFrames+failures <= 5 {
					t.Errorf("cut %d: %s", c, msg)
				}
			}
			for k := 0; k < len(rec.entries); k++ {
				start, end := rec.offs[k], rec.offs[k+1]
				for c := start; c < end; c++ {
					near := c-start < 64 || end-c <= 64
					if near || (c-start)%stride == 0 {
						test(c)
					}
				}
			}
			sweepCuts.Add(int64(cuts))
			t.Logf("%d cut points, %d false frames, %d other failures", cuts, falseFrames, failures)
			if falseFrames+failures > 0 {
				t.Fatalf("%d false frames and %d other failures in %d cut points", falseFrames, failures, cuts)
			}
		})
	}
}
