package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3logs/s3logs/driver/logentry"
	"github.com/s3logs/s3logs/segment"
)

// TestDeduper: the records at the head of a re-attached FIFO that repeat
// the end of the repaired segment are dropped, and only those.
func TestDeduper(t *testing.T) {
	cases := []struct {
		name      string
		tail      string // one record per letter
		fifo      string
		wantStore string
		dropped   int
	}{
		{"suffix repeated", "abc", "bcde", "de", 2},
		{"last repeated", "abc", "cd", "d", 1},
		{"whole tail repeated", "abc", "abcd", "d", 3},
		{"nothing repeated", "abc", "de", "de", 0},
		{"match that breaks off", "abcd", "bcx", "bcx", 0},
		{"repeated records in the tail", "aa", "ax", "x", 1},
		{"empty tail", "", "ab", "ab", 0},
		{"fifo ends inside a match", "abc", "ab", "ab", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &deduper{}
			for _, r := range c.tail {
				d.tail = append(d.tail, []byte(string(r)+"\n"))
			}
			var stored []string
			store := func(_ time.Time, rec []byte) { stored = append(stored, strings.TrimSuffix(string(rec), "\n")) }
			for _, r := range c.fifo {
				d.offer([]byte(string(r)+"\n"), time.Time{}, store)
			}
			if !d.done() {
				d.flush(store)
			}
			if got := strings.Join(stored, ""); got != c.wantStore || d.dropped != c.dropped {
				t.Errorf("stored %q dropped %d, want %q and %d", got, d.dropped, c.wantStore, c.dropped)
			}
		})
	}
}

// writeLines writes n numbered stdout frames to w in chunks, as fast as
// the pipe takes them, with timestamps from now on; it closes done at the
// end.
func writeLines(t *testing.T, w *os.File, from, n int, done chan<- error) {
	now := time.Now().UnixNano()
	var buf []byte
	for i := from; i < from+n; i++ {
		b, err := (&logentry.LogEntry{Source: "stdout", TimeNano: now + int64(i), Line: fmt.Appendf(nil, "line %08d", i)}).Marshal()
		if err != nil {
			done <- err
			return
		}
		buf = append(buf, byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b)))
		buf = append(buf, b...)
		if len(buf) > 48<<10 || i == from+n-1 {
			if _, err := w.Write(buf); err != nil {
				done <- err
				return
			}
			buf = buf[:0]
		}
	}
	done <- nil
}

// collectLines decodes every sealed segment the queue got, in order, and
// returns the log lines.
func collectLines(t *testing.T, seals []segment.Sealed) []string {
	t.Helper()
	var lines []string
	for _, s := range seals {
		for _, r := range readSegment(t, s) {
			lines = append(lines, strings.TrimSuffix(r["log"].(string), "\n"))
		}
	}
	return lines
}

// TestShutdownAndReattachLoseNothing: a writer fills the FIFO as fast as it
// can while the plugin shuts down (streams interrupted at a frame
// boundary) and a new Driver re-attaches, three times; every line is
// stored exactly once, in order.
func TestShutdownAndReattachLoseNothing(t *testing.T) {
	e := newEnv(t)
	path, w := e.fifo("busy")
	const n = 300_000
	done := make(chan error, 1)
	go writeLines(t, w, 0, n, done)
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs"})); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		time.Sleep(30 * time.Millisecond)
		e.restart(t)
		if got, err := e.d.Reattach(nil); err != nil || got != 1 {
			t.Fatalf("Reattach = %d, %v", got, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.d.StopLogging(path)
	w.Close()
	waitFor(t, func() bool { return e.d.Streams() == 0 })
	// Every stream has ended, so every seal is queued: one segment per
	// stream that stored lines, 1 to 4. While the writer writes, a stream
	// leaves the burst in its journal (yielding), so a stream the restart
	// cut after 30 ms may have stored nothing, and the last one all.
	seals := e.q.wait(t, 1)
	t.Logf("%d sealed segments", len(seals))
	slices.SortFunc(seals, func(a, b segment.Sealed) int { return int(a.Meta.Seq) - int(b.Meta.Seq) })
	lines := collectLines(t, seals)
	if len(lines) != n {
		t.Errorf("%d lines stored, want %d", len(lines), n)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("line %08d", i); l != want {
			t.Fatalf("line %d = %q, want %q (lost or repeated around a restart)", i, l, want)
		}
	}
}

// TestShutdownReadsStoppedStreamsToEOF: a stream whose container stopped
// (StopLogging, then Docker closed and deleted the FIFO) reads the whole
// pipe at shutdown: nobody could read those bytes later.
func TestShutdownReadsStoppedStreamsToEOF(t *testing.T) {
	e := newEnv(t)
	path, w := e.fifo("stopped")
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs"})); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go writeLines(t, w, 0, 20_000, done)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e.d.StopLogging(path)
	w.Close()
	os.Remove(path)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lines := collectLines(t, e.q.wait(t, 1))
	if len(lines) != 20_000 {
		t.Fatalf("%d lines stored, want 20000", len(lines))
	}
}

// TestHeldPartialLineSurvivesRestart: the pieces of a long line stay in
// the FIFO until its last piece is stored, so a restart between two pieces
// loses nothing and the line is stored whole.
func TestHeldPartialLineSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	path, w := e.fifo("partial")
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs"})); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	piece := func(ord int32, last bool, text string) []byte {
		return frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: now, Line: []byte(text), Partial: true,
			PartialLogMetadata: &logentry.PartialLogEntryMetadata{Id: "long", Ordinal: ord, Last: last}})
	}
	whole := frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: now - 1, Line: []byte("before")})
	w.Write(append(whole, append(piece(1, false, strings.Repeat("a", 16<<10)), piece(2, false, strings.Repeat("b", 16<<10))...)...))
	time.Sleep(200 * time.Millisecond) // read, and the chain held
	e.restart(t)
	if got, err := e.d.Reattach(nil); err != nil || got != 1 {
		t.Fatalf("Reattach = %d, %v", got, err)
	}
	w.Write(piece(3, true, "end"))
	e.d.StopLogging(path)
	w.Close()
	waitFor(t, func() bool { return e.d.Streams() == 0 })
	seals := e.q.wait(t, 2)
	slices.SortFunc(seals, func(a, b segment.Sealed) int { return int(a.Meta.Seq) - int(b.Meta.Seq) })
	lines := collectLines(t, seals)
	want := []string{"before", strings.Repeat("a", 16<<10) + strings.Repeat("b", 16<<10) + "end"}
	if !slices.Equal(lines, want) {
		t.Fatalf("stored %d lines (%.40q...), want the line before and the whole long line", len(lines), lines)
	}
}

// restart shuts the env's Driver down (streams interrupted, saved
// state kept) and opens a new one on the same spool, as a restarted plugin.
func (e *env) restart(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	root := e.spool.Root()
	e.spool.Close()
	e.openDriver(root)
}

// editSaved rewrites the one saved stream's log-opts with edit.
func (e *env) editSaved(t *testing.T, edit func(cfg map[string]string)) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(e.state, "*.json"))
	if len(files) != 1 {
		t.Fatalf("saved streams: %v", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var sv savedStream
	if err := json.Unmarshal(b, &sv); err != nil {
		t.Fatal(err)
	}
	edit(sv.Config)
	if b, err = json.Marshal(sv); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReattachNeverLeavesAFIFOUnread: a re-attach whose FIFO cannot be
// opened is retried until it works; saved options that no longer validate
// fall back to their defaults; a saved stream with no usable bucket is
// still read so its container never blocks, and nothing is stored for it.
func TestReattachNeverLeavesAFIFOUnread(t *testing.T) {
	t.Run("open fails, then works", func(t *testing.T) {
		e := newEnv(t)
		path, w := e.fifo("retry")
		defer w.Close()
		if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs"})); err != nil {
			t.Fatal(err)
		}
		e.restart(t)
		var fails atomic.Int32
		e.d.openFIFO = func(p string) (*os.File, error) {
			if fails.Add(1) <= 3 {
				return nil, syscall.EMFILE
			}
			return openFIFO(p)
		}
		if n, _ := e.d.Reattach(nil); n != 0 {
			t.Fatalf("Reattach resumed %d streams at once; the open was failing", n)
		}
		waitFor(t, func() bool { return e.d.Streams() == 1 })
		done := make(chan error, 1)
		go writeLines(t, w, 0, 1000, done)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		w.Close()
		if lines := collectLines(t, e.q.wait(t, 1)); len(lines) != 1000 {
			t.Fatalf("%d lines stored after the retried re-attach, want 1000", len(lines))
		}
	})
	t.Run("options no longer validate", func(t *testing.T) {
		e := newEnv(t)
		path, w := e.fifo("stricter")
		defer w.Close()
		if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs", "segment-size": "1m"})); err != nil {
			t.Fatal(err)
		}
		e.restart(t)
		e.editSaved(t, func(cfg map[string]string) { cfg["segment-size"] = "huge" })
		if n, err := e.d.Reattach(nil); n != 1 || err != nil {
			t.Fatalf("Reattach = %d, %v", n, err)
		}
		done := make(chan error, 1)
		go writeLines(t, w, 0, 1000, done)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		w.Close()
		seals := e.q.wait(t, 1)
		if lines := collectLines(t, seals); len(lines) != 1000 || seals[0].Meta.Destination.Bucket != "logs" {
			t.Fatalf("%d lines stored in bucket %q, want 1000 in logs", len(lines), seals[0].Meta.Destination.Bucket)
		}
	})
	t.Run("no usable bucket", func(t *testing.T) {
		e := newEnv(t)
		path, w := e.fifo("nobucket")
		defer w.Close()
		if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs"})); err != nil {
			t.Fatal(err)
		}
		e.restart(t)
		e.editSaved(t, func(cfg map[string]string) { delete(cfg, "bucket") })
		if n, _ := e.d.Reattach(nil); n != 1 {
			t.Fatalf("Reattach resumed %d streams, want 1 (read and counted)", n)
		}
		e.readNotStored(t, w)
	})
}

// readNotStored writes 4 MiB into the FIFO through w (four times its pipe)
// and checks that the stream read it all, so the writer never blocked, and
// stored nothing.
func (e *env) readNotStored(t *testing.T, w *os.File) {
	t.Helper()
	done := make(chan error, 1)
	go writeLines(t, w, 0, 200_000, done)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the container's writes blocked: the FIFO was left unread")
	}
	w.Close()
	waitFor(t, func() bool { return e.d.Streams() == 0 })
	e.q.mu.Lock()
	defer e.q.mu.Unlock()
	if len(e.q.sealed) != 0 {
		t.Errorf("%d segments stored for a stream that must only be read", len(e.q.sealed))
	}
}

// TestStreamShrinksAfterALongLine: a stream that logged a 1 MiB line gives
// the memory back before its next blocking read.
func TestStreamShrinksAfterALongLine(t *testing.T) {
	sp, err := segment.Open(segment.Config{Root: t.TempDir(), NoTicker: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	long := frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: time.Now().UnixNano(), Line: bytes.Repeat([]byte{1}, 1<<20-64)})
	s := newBenchStream(t, sp, bytes.NewReader(long), func(segment.Sealed) {})
	s.w = nil // count, do not store: this test is about memory
	s.run()
	if cap(s.buf) > shrinkAbove {
		t.Errorf("JSON buffer still %d bytes after the stream ended", cap(s.buf))
	}
	if s.discarded != 1 {
		t.Fatalf("%d records, want 1", s.discarded)
	}
}
