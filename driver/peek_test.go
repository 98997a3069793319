package driver

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// peekFIFO makes a FIFO, opens its writer read-write as dockerd does and a
// peekSource on a non-blocking reader.
func peekFIFO(t *testing.T) (path string, w *os.File, open func() (*peekSource, *os.File)) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devNull.Close() })
	open = func() (*peekSource, *os.File) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		growPipe(f)
		ps, err := newPeekSource(f, devNull)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ps.Close(); f.Close() })
		return ps, f
	}
	return path, w, open
}

// TestPeekSourceLeavesUncommitted: what a reader delivered but did not
// commit is read again, from the first uncommitted byte, by the next reader
// of the FIFO, as after a crash; committed bytes are gone for good.
func TestPeekSourceLeavesUncommitted(t *testing.T) {
	_, w, open := peekFIFO(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320,000 bytes
	go w.Write(data)

	ps, f := open()
	got := readN(t, ps, 100_000, false)
	if !bytes.Equal(got, data[:100_000]) {
		t.Fatal("first reader: wrong bytes")
	}
	if err := ps.Commit(40_000); err != nil {
		t.Fatal(err)
	}
	if ps.Uncommitted() != 60_000 {
		t.Fatalf("Uncommitted = %d, want 60000", ps.Uncommitted())
	}
	ps.Close()
	f.Close() // the "crash": 60,000 delivered bytes were never committed

	ps2, _ := open()
	got = readN(t, ps2, len(data)-40_000, false)
	if !bytes.Equal(got, data[40_000:]) {
		t.Fatal("second reader did not start at the first uncommitted byte")
	}
	if err := ps2.Release(); err != nil {
		t.Fatal(err)
	}
	if ps2.Uncommitted() != 0 {
		t.Fatalf("Uncommitted after Release = %d", ps2.Uncommitted())
	}
}

// TestPeekSourceIdleHangupEOF: with uncommitted bytes and nothing new,
// Read returns errIdle (it cannot wait in the poller); once Docker closes
// the FIFO it returns errHangup, and io.EOF when everything was committed.
func TestPeekSourceIdleHangupEOF(t *testing.T) {
	path, w, open := peekFIFO(t)
	ps, _ := open()
	w.Write([]byte("abc"))
	readN(t, ps, 3, false)
	begin := time.Now()
	if _, err := ps.Read(make([]byte, 10)); !errors.Is(err, errIdle) {
		t.Fatalf("Read with only uncommitted bytes = %v, want errIdle", err)
	}
	if d := time.Since(begin); d < peekIdle/2 {
		t.Errorf("errIdle after %v, want about %v", d, peekIdle)
	}
	w.Write([]byte("de"))
	if got := readN(t, ps, 2, false); string(got) != "de" {
		t.Fatalf("new bytes after idle: %q", got)
	}
	w.Close()
	if _, err := ps.Read(make([]byte, 10)); !errors.Is(err, errHangup) {
		t.Fatalf("Read after the writer closed, bytes uncommitted = %v, want errHangup", err)
	}
	if err := ps.Commit(5); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.Read(make([]byte, 10)); !errors.Is(err, io.EOF) {
		t.Fatalf("Read after everything was committed = %v, want io.EOF", err)
	}
	_ = path
}

// TestPeekSourceInterrupt: Interrupt wakes a Read waiting in the poller.
func TestPeekSourceInterrupt(t *testing.T) {
	_, _, open := peekFIFO(t)
	ps, _ := open()
	done := make(chan error, 1)
	go func() {
		_, err := ps.Read(make([]byte, 10))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ps.Interrupt()
	select {
	case err := <-done:
		if !errors.Is(err, errInterrupted) {
			t.Fatalf("Read = %v, want errInterrupted", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Interrupt did not wake the Read")
	}
}

// TestPeekSourceCommitBounds: Commit refuses more than was delivered.
func TestPeekSourceCommitBounds(t *testing.T) {
	_, w, open := peekFIFO(t)
	ps, _ := open()
	w.Write([]byte("xyz"))
	readN(t, ps, 3, false)
	if err := ps.Commit(4); err == nil {
		t.Fatal("Commit of more than was delivered succeeded")
	}
}

// TestPeekSourceRefusesNonPipes: only a FIFO can be peeked; the stream then
// falls back to plain reads.
func TestPeekSourceRefusesNonPipes(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "regular"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ps, err := newPeekSource(f, nil); err == nil {
		ps.Close()
		t.Fatal("newPeekSource accepted a regular file")
	}
}
