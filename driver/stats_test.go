package driver

import (
	"strings"
	"testing"
	"time"

	"github.com/s3logs/s3logs/driver/logentry"
)

// TestStatsCountWhatStreamsRead checks the Driver's counters against what
// the test wrote into two FIFOs: records and line bytes by source, a line
// Docker split into pieces counted once, streams open while they read, a
// corrupt frame and the bytes skipped after it. The counts must be there
// while the streams wait for input, before they end.
func TestStatsCountWhatStreamsRead(t *testing.T) {
	e := newEnv(t)
	p1, w1 := e.fifo("c1")
	p2, w2 := e.fifo("c2")
	i2 := info(map[string]string{"bucket": "logs"})
	i2.ContainerID = strings.Repeat("cd", 32)
	if err := e.d.StartLogging(p1, info(map[string]string{"bucket": "logs"})); err != nil {
		t.Fatal(err)
	}
	if err := e.d.StartLogging(p2, i2); err != nil {
		t.Fatal(err)
	}
	if st := e.d.Stats(); st.StreamsOpen != 2 || st.Stdout.Records != 0 {
		t.Fatalf("two idle streams: %+v", st)
	}
	now := time.Now().UnixNano()
	entry := func(src, line string) []byte {
		return frame(t, &logentry.LogEntry{Source: src, TimeNano: now, Line: []byte(line)})
	}
	var b1 []byte
	for range 100 {
		b1 = append(b1, entry("stdout", "0123456789")...) // 11 bytes with the newline
	}
	for range 10 {
		b1 = append(b1, entry("stderr", "oops")...) // 5 bytes
	}
	// One line in two pieces (Docker splits lines over 16 KiB): one record
	// of 7 bytes with its newline.
	b1 = append(b1, frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: now, Line: []byte("abc"), Partial: true,
		PartialLogMetadata: &logentry.PartialLogEntryMetadata{Id: "p", Ordinal: 1}})...)
	b1 = append(b1, frame(t, &logentry.LogEntry{Source: "stdout", TimeNano: now, Line: []byte("def"), Partial: true,
		PartialLogMetadata: &logentry.PartialLogEntryMetadata{Id: "p", Ordinal: 2, Last: true}})...)
	if _, err := w1.Write(b1); err != nil {
		t.Fatal(err)
	}
	// The second stream: a frame that is not a LogEntry between two good ones.
	b2 := entry("stdout", "before")
	b2 = append(b2, 0, 0, 0, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	b2 = append(b2, entry("stdout", "after")...)
	if _, err := w2.Write(b2); err != nil {
		t.Fatal(err)
	}

	want := Stats{StreamsOpen: 2, Stdout: In{Records: 100 + 1 + 2, Bytes: 100*11 + 7 + 7 + 6}, Stderr: In{Records: 10, Bytes: 10 * 5}, CorruptFrames: 1, SkippedBytes: 10}
	var st Stats
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st = e.d.Stats(); st == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("while the streams wait for input: %+v, want %+v", st, want)
		}
	}
	w1.Close()
	w2.Close()
	e.q.wait(t, 2)
	waitFor(t, func() bool { return e.d.Stats().StreamsOpen == 0 })
	want.StreamsOpen = 0
	if st := e.d.Stats(); st != want {
		t.Fatalf("after the streams ended: %+v, want %+v", st, want)
	}
}

// TestStatsCountReattachedAndUnstorable: a re-attached stream is counted,
// and so are the records of a stream read without a usable destination.
func TestStatsCountReattachedAndUnstorable(t *testing.T) {
	e := newEnv(t)
	path, w := e.fifo("nobucket")
	defer w.Close()
	if err := e.d.StartLogging(path, info(map[string]string{"bucket": "logs"})); err != nil {
		t.Fatal(err)
	}
	if st := e.d.Stats(); st.StreamsReattached != 0 {
		t.Fatalf("a started stream counted as re-attached: %+v", st)
	}
	e.restart(t)
	e.editSaved(t, func(cfg map[string]string) { delete(cfg, "bucket") })
	if n, _ := e.d.Reattach(nil); n != 1 {
		t.Fatalf("Reattach resumed %d streams, want 1", n)
	}
	e.readNotStored(t, w)
	st := e.d.Stats()
	if st.StreamsReattached != 1 || st.Unstorable != 200_000 || st.Stdout.Records != 200_000 || st.NotStored != 0 {
		t.Fatalf("%+v, want 1 re-attached stream and 200000 records read and not stored", st)
	}
}
