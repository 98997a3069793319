package driver

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3logs/s3logs/driver/logentry"
)

// journalFIFO makes a FIFO and returns its read end (non-blocking, as the
// Driver opens it) and a write end.
func journalFIFO(t *testing.T) (r, w *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := openFIFO(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err = os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// readN reads exactly n bytes from src, waiting through errIdle, and
// commits as it goes when commit is set.
func readN(t *testing.T, src frameSource, n int, commit bool) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, 16<<10)
	for len(out) < n {
		k, err := src.Read(buf[:min(len(buf), n-len(out))])
		if errors.Is(err, errIdle) {
			continue
		}
		if err != nil {
			t.Fatalf("Read after %d of %d bytes: %v", len(out), n, err)
		}
		out = append(out, buf[:k]...)
		if commit {
			if err := src.Commit(int64(k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

// stillBlocked fails the test if the write behind done completes within
// 300 ms.
func stillBlocked(t *testing.T, done <-chan error, msg string) {
	t.Helper()
	select {
	case <-done:
		t.Fatal(msg)
	case <-time.After(300 * time.Millisecond):
	}
}

// crash stops j as a killed process would leave it: the pump stops and
// the file stays as it is; the FIFO reader is made usable again, as the
// next process opens the FIFO afresh.
func crash(j *journalSource, r *os.File) {
	j.halt()
	<-j.pumpDone
	j.f.Close()
	r.SetReadDeadline(time.Time{})
}

// crashAndResume crashes j, opens its journal again as the next process
// would, writes more to the FIFO and returns the next n bytes the resumed
// journal delivers, committing them.
func crashAndResume(t *testing.T, j *journalSource, r, w *os.File, more []byte, n int) []byte {
	t.Helper()
	crash(j, r)
	j2, err := openJournal(j.f.Name(), r, false, journalOptions{limit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j2.Close() })
	if _, err := w.Write(more); err != nil {
		t.Fatal(err)
	}
	return readN(t, j2, n, true)
}

func writeAsync(w io.Writer, b []byte) <-chan error {
	done := make(chan error, 1)
	go func() { _, err := w.Write(b); done <- err }()
	return done
}

// TestJournalTakesABurst: a burst far larger than the pipe leaves it at
// once while the stream reads nothing, and arrives intact.
func TestJournalTakesABurst(t *testing.T) {
	r, w := journalFIFO(t)
	path := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(path, r, true, journalOptions{limit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	burst := randomBytes(16 << 20)
	select {
	case err := <-writeAsync(w, burst):
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the writer waited on a stream that read nothing; journal holds %d bytes", j.Pending())
	}
	if got := readN(t, j, len(burst), true); !bytes.Equal(got, burst) {
		t.Fatal("bytes read back differ from the burst")
	}
	w.Close()
	if _, err := j.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
		t.Fatalf("Read at the end = %v, want EOF", err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a fully stored journal was not removed: %v", err)
	}
}

// TestJournalLimit: past its limit the journal takes nothing more until
// the stream commits, so a stalled stream holds limit bytes on disk, not
// the whole burst.
func TestJournalLimit(t *testing.T) {
	r, w := journalFIFO(t)
	const limit = 512 << 10
	j, err := openJournal(filepath.Join(t.TempDir(), "j"), r, true, journalOptions{limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	burst := randomBytes(8 << 20)
	done := writeAsync(w, burst)
	stillBlocked(t, done, "an 8 MiB write completed into a 512 KiB journal and a 1 MiB pipe that nobody read")
	if p := j.Pending(); p != limit {
		t.Errorf("journal holds %d bytes, want its limit %d", p, limit)
	}
	if got := readN(t, j, len(burst), true); !bytes.Equal(got, burst) {
		t.Fatal("bytes read back differ")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestJournalResume: a process that dies (nothing but the journal and the
// FIFO survive it) is followed by one that resumes at the first byte not
// committed, then goes on with the FIFO; everything committed is never
// delivered again.
func TestJournalResume(t *testing.T) {
	r, w := journalFIFO(t)
	path := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(path, r, true, journalOptions{limit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(3 << 20)
	if _, err := w.Write(data[:2<<20]); err != nil {
		t.Fatal(err)
	}
	got := readN(t, j, 1<<20, false)
	if err := j.Commit(700 << 10); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return j.Pending() == 2<<20-700<<10 })
	rest := crashAndResume(t, j, r, w, data[2<<20:], len(data)-700<<10)
	if !bytes.Equal(got[:700<<10], data[:700<<10]) || !bytes.Equal(rest, data[700<<10:]) {
		t.Fatal("the resumed journal did not deliver exactly the bytes after the commit")
	}
}

// TestJournalEmptied: once everything is stored, a journal past
// journalEmptyAt goes back to its header, and a crash right after
// resumes with nothing to repeat.
func TestJournalEmptied(t *testing.T) {
	r, w := journalFIFO(t)
	path := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(path, r, true, journalOptions{limit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(journalEmptyAt + 1000)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return j.Pending() == int64(len(data)) })
	readN(t, j, len(data), true)
	if fi, err := os.Stat(path); err != nil || fi.Size() != journalHeader {
		t.Fatalf("journal after everything was committed: %v, %v", fi.Size(), err)
	}
	crash(j, r)
	if journalPending(path) {
		t.Error("an emptied journal reports pending bytes")
	}
	more := randomBytes(5000)
	w.Write(more)
	j2, err := openJournal(path, r, false, journalOptions{limit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if got := readN(t, j2, len(more), true); !bytes.Equal(got, more) {
		t.Fatal("after emptying, the next bytes differ")
	}
}

// TestJournalFreshIgnoresOldBytes: a new stream on a FIFO path never
// delivers what an earlier stream left in a journal of the same name.
func TestJournalFreshIgnoresOldBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	writeJournal(t, path, []byte("old bytes"), 0)
	r, w := journalFIFO(t)
	j, err := openJournal(path, r, true, journalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	w.Write([]byte("new"))
	if got := readN(t, j, 3, true); string(got) != "new" {
		t.Fatalf("fresh journal delivered %q", got)
	}
}

// writeJournal writes a journal file holding data, committed bytes of it
// already stored.
func writeJournal(t *testing.T, path string, data []byte, committed int64) {
	t.Helper()
	b := append([]byte(journalMagic), binary.LittleEndian.AppendUint64(nil, uint64(committed))...)
	if err := os.WriteFile(path, append(b, data...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReattachStoresAJournalWhoseFIFOIsGone: a container that stopped
// while no plugin ran leaves its journal's unstored frames; Reattach
// stores them and forgets the stream.
func TestReattachStoresAJournalWhoseFIFOIsGone(t *testing.T) {
	e := newEnv(t)
	file := filepath.Join(e.fifos, "gone")
	i := info(map[string]string{"bucket": "logs"})
	sv := savedStream{File: file, Config: i.Config, ContainerID: i.ContainerID, ContainerName: i.ContainerName}
	if err := e.d.save(sv); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	var data []byte
	data = append(data, frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: now, Line: []byte("stored already")})...)
	stored := int64(len(data))
	data = append(data, frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: now + 1, Line: []byte("one")})...)
	data = append(data, frame(t, &logentry.LogEntry{Source: "stderr", TimeNano: now + 2, Line: []byte("two")})...)
	writeJournal(t, e.d.journalPath(file), data, stored)
	n, err := e.d.Reattach(nil)
	if err != nil || n != 1 {
		t.Fatalf("Reattach = %d, %v", n, err)
	}
	seals := e.q.wait(t, 1)
	recs := readSegment(t, seals[0])
	if len(recs) != 2 || recs[0]["log"] != "one\n" || recs[1]["log"] != "two\n" || recs[1]["stream"] != "stderr" {
		t.Fatalf("records stored from the journal: %v", recs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitUntil(t, func() bool { return e.d.Streams() == 0 })
	if err := e.d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(e.state, "*"))
	if len(left) != 0 {
		t.Errorf("state left after the journal was stored: %v", left)
	}
}

// fakeSpace is a JournalSpace whose room the test sets.
type fakeSpace struct {
	room  atomic.Int64
	bytes atomic.Int64
}

func (f *fakeSpace) JournalRoom() int64  { return f.room.Load() }
func (f *fakeSpace) JournalGrew(n int64) { f.bytes.Add(n) }

// TestJournalBypassWhenTheSpoolIsFull: with no room on the spool the
// journal takes nothing and the stream reads the FIFO directly (so the
// spool's policy applies as without a journal); once there is room again
// the journal takes the bursts, and the spool hears of every byte.
func TestJournalBypassWhenTheSpoolIsFull(t *testing.T) {
	r, w := journalFIFO(t)
	ps, err := newPeekSource(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	space := &fakeSpace{}
	jpath := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(jpath, r, true, journalOptions{space: space, direct: ps})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()

	first := randomBytes(4 << 20)
	done := writeAsync(w, first)
	stillBlocked(t, done, "a 4 MiB write completed with no room for the journal and nobody reading")
	if p := j.Pending(); p != 0 {
		t.Fatalf("journal took %d bytes with no room on the spool", p)
	}
	if got := readN(t, j, len(first), true); !bytes.Equal(got, first) {
		t.Fatal("bytes read directly differ")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !j.bypass {
		t.Fatal("the stream did not read the FIFO directly")
	}

	space.room.Store(1 << 40)
	second := randomBytes(8 << 20)
	// One more read notices the room and hands the FIFO back to the pump.
	done = writeAsync(w, second)
	got := readN(t, j, 1, true)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("with room again, the journal did not take the burst")
	}
	got = append(got, readN(t, j, len(second)-1, true)...)
	if !bytes.Equal(got, second) {
		t.Fatal("bytes read after the switch back differ")
	}
	if fi, err := os.Stat(jpath); err != nil || space.bytes.Load() != fi.Size()-journalHeader {
		t.Errorf("spool counts %d journal bytes, the file holds %d (%v)", space.bytes.Load(), fi.Size()-journalHeader, err)
	}
}

// TestJournalBypassIdleWithAPartialFrame: when the spool runs out of room
// while the stream holds journal bytes it has not stored (the start of a
// frame, a partial line), the direct read of an empty FIFO ends in errIdle
// after peekIdle, so the stream's hold and release timeouts run instead of
// waiting for Docker's next write; the bytes that follow come directly and
// commit after the journal's.
func TestJournalBypassIdleWithAPartialFrame(t *testing.T) {
	r, w := journalFIFO(t)
	ps, err := newPeekSource(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	space := &fakeSpace{}
	space.room.Store(1 << 40)
	j, err := openJournal(filepath.Join(t.TempDir(), "j"), r, true, journalOptions{space: space, direct: ps, yieldFor: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	first := randomBytes(1000)
	if _, err := w.Write(first); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, j, len(first), false); !bytes.Equal(got, first) {
		t.Fatal("journal bytes differ")
	}
	space.room.Store(0)
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	buf := make([]byte, 64<<10)
	start := time.Now()
	go func() { n, err := j.Read(buf); res <- result{n, err} }()
	select {
	case got := <-res:
		if !errors.Is(got.err, errIdle) || got.n != 0 {
			t.Fatalf("Read of an empty FIFO in bypass = %d, %v; want errIdle", got.n, got.err)
		}
		t.Logf("errIdle after %v", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		w.Write([]byte{0}) // let the Read return
		<-res
		t.Fatal("in bypass with a partial frame uncommitted, Read waited for the next write instead of returning errIdle")
	}
	if !j.bypass {
		t.Fatal("the stream did not switch to reading the FIFO directly")
	}
	second := randomBytes(3000)
	if _, err := w.Write(second); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, j, len(second), false); !bytes.Equal(got, second) {
		t.Fatal("bytes read directly differ")
	}
	if u := j.Uncommitted(); u != int64(len(first)+len(second)) {
		t.Fatalf("Uncommitted = %d, want %d", u, len(first)+len(second))
	}
	if err := j.Commit(int64(len(first) + len(second))); err != nil {
		t.Fatal(err)
	}
	if u := j.Uncommitted(); u != 0 {
		t.Fatalf("Uncommitted after Commit = %d", u)
	}
}

// TestJournalGivesBackStoredBlocks: a stream catching up on a long burst
// keeps on disk only what it has not stored (stored bytes' blocks are
// punched out), the spool counts just those, and a crash resumes across
// the hole with exactly the bytes not stored.
func TestJournalGivesBackStoredBlocks(t *testing.T) {
	r, w := journalFIFO(t)
	path := filepath.Join(t.TempDir(), "j")
	space := &fakeSpace{}
	space.room.Store(1 << 40)
	j, err := openJournal(path, r, true, journalOptions{limit: 64 << 20, space: space, yieldFor: -1})
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(14 << 20)
	if _, err := w.Write(data[:12<<20]); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return j.Pending() == 12<<20 })
	const stored = 9 << 20
	if got := readN(t, j, stored, true); !bytes.Equal(got, data[:stored]) {
		t.Fatal("bytes read differ")
	}
	if j.noHoles {
		t.Fatal("the test's filesystem cannot punch holes")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	// 3 MiB not stored, and stored bytes short of a freeing.
	const most = 3<<20 + journalFreeEvery + journalBlock
	if on := st.Blocks * 512; on > most || space.bytes.Load() > most {
		t.Fatalf("with 3 MiB of 12 not stored, the journal takes %d bytes on disk and the spool counts %d; want at most %d", on, space.bytes.Load(), most)
	}
	if space.bytes.Load() != j.held() {
		t.Fatalf("the spool counts %d journal bytes, the journal holds %d", space.bytes.Load(), j.held())
	}
	if rest := crashAndResume(t, j, r, w, data[12<<20:], len(data)-stored); !bytes.Equal(rest, data[stored:]) {
		t.Fatal("after a crash, the journal with a hole did not deliver exactly the bytes not stored")
	}
}

// TestJournalYielding: the decision to leave a burst in the journal, case
// by case.
func TestJournalYielding(t *testing.T) {
	const limit = 64 << 20
	now := time.Now()
	cases := []struct {
		name      string
		lastPump  time.Duration // before now
		pending   int64
		room      int64
		since     time.Duration // yieldSince before now; < 0: not yielding yet
		eof       bool
		yieldFor  time.Duration
		want      bool
		wantSince bool // yieldSince set afterwards
	}{
		{name: "burst starts", lastPump: time.Millisecond, pending: 1 << 20, room: 1 << 40, since: -1, want: true, wantSince: true},
		{name: "burst goes on", lastPump: time.Millisecond, pending: 1 << 20, room: 1 << 40, since: time.Second, want: true, wantSince: true},
		{name: "yielded long enough", lastPump: time.Millisecond, pending: 1 << 20, room: 1 << 40, since: yieldMax + time.Millisecond, want: false, wantSince: true},
		{name: "container paused", lastPump: time.Second, pending: 1 << 20, room: 1 << 40, since: time.Second, want: false, wantSince: false},
		{name: "journal nearly full", lastPump: time.Millisecond, pending: limit - limit/8, room: 1 << 40, since: time.Second, want: false, wantSince: true},
		{name: "spool nearly full", lastPump: time.Millisecond, pending: 1 << 20, room: limit/8 - 1, since: time.Second, want: false, wantSince: true},
		{name: "FIFO ended", lastPump: time.Millisecond, pending: 1 << 20, room: 1 << 40, since: -1, eof: true, want: false},
		{name: "yielding off", lastPump: time.Millisecond, pending: 1 << 20, room: 1 << 40, since: -1, yieldFor: -1, want: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			space := &fakeSpace{}
			space.room.Store(c.room)
			yf := c.yieldFor
			if yf == 0 {
				yf = yieldMax
			}
			j := &journalSource{limit: limit, space: space, yieldFor: yf, quiet: yieldQuiet, committed: 5 << 20}
			j.lastPump.Store(now.Add(-c.lastPump).UnixNano())
			if c.since >= 0 {
				j.yieldSince = now.Add(-c.since)
			}
			if got := j.yielding(j.committed+c.pending, c.eof); got != c.want {
				t.Errorf("yielding = %v, want %v", got, c.want)
			}
			if got := !j.yieldSince.IsZero(); got != c.wantSince {
				t.Errorf("yielding afterwards: %v, want %v", got, c.wantSince)
			}
		})
	}
}

// TestJournalYieldsToABurst: on a real FIFO, while a container writes
// without pause the stream is handed nothing, its journal takes the
// bytes, and once the writer pauses every byte is delivered; with a short
// yieldFor, a writer that never pauses still gets its bytes read.
func TestJournalYieldsToABurst(t *testing.T) {
	for _, tc := range []struct {
		name     string
		yieldFor time.Duration
	}{{"until the writer pauses", time.Hour}, {"at most yieldFor", 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			r, w := journalFIFO(t)
			j, err := openJournal(filepath.Join(t.TempDir(), "j"), r, true,
				journalOptions{limit: 64 << 20, yieldFor: tc.yieldFor, quiet: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			data := randomBytes(2 << 20)
			var writing atomic.Bool
			writing.Store(true)
			done := make(chan error, 1)
			go func() {
				// 2 MiB in 8 KiB writes, one every 2 ms: about a second.
				var err error
				for off := 0; off < len(data) && err == nil; off += 8 << 10 {
					_, err = w.Write(data[off : off+8<<10])
					time.Sleep(2 * time.Millisecond)
				}
				writing.Store(false)
				done <- err
			}()
			buf := make([]byte, 64<<10)
			n, err := j.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			stillWriting := writing.Load()
			if tc.yieldFor == time.Hour && stillWriting {
				t.Fatalf("the stream was handed %d bytes while the container was still writing", n)
			}
			if tc.yieldFor != time.Hour && !stillWriting {
				t.Fatal("a writer that never paused got nothing read until it ended")
			}
			if tc.yieldFor == time.Hour && j.Pending() < int64(len(data)) {
				t.Fatalf("the journal took %d of the %d bytes written", j.Pending(), len(data))
			}
			if err := j.Commit(int64(n)); err != nil {
				t.Fatal(err)
			}
			got := append(buf[:n:n], readN(t, j, len(data)-n, true)...)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("bytes delivered differ from those written")
			}
		})
	}
}
