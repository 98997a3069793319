package segment

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWritebackStartsEveryMiB: a segment's bytes have their writeback
// started in contiguous ranges of at least writebackEvery as they are
// written, so no segment gathers more dirty page cache than that.
func TestWritebackStartsEveryMiB(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type call struct{ off, n int64 }
	var calls []call
	c := newCountingWriter(f, nil, false)
	c.writeback = func(g *os.File, off, n int64) {
		if g != f {
			t.Error("writeback of another file")
		}
		startWriteback(g, off, n) // the real call must accept it too
		calls = append(calls, call{off, n})
	}
	chunk := make([]byte, 100<<10)
	const total = 3*writebackEvery + 512<<10
	for written := 0; written < total; written += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if len(calls) != 3 {
		t.Fatalf("writeback started %d times for %d bytes, want 3: %v", len(calls), total, calls)
	}
	var next int64
	for _, k := range calls {
		if k.off != next || k.n < writebackEvery || k.n > writebackEvery+int64(len(chunk)) {
			t.Fatalf("writeback ranges %v: want contiguous ranges from 0 of %d to %d bytes", calls, writebackEvery, writebackEvery+len(chunk))
		}
		next = k.off + k.n
	}
	if unstarted := c.size() - next; unstarted >= writebackEvery {
		t.Fatalf("%d bytes written without their writeback started", unstarted)
	}
}
