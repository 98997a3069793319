package loggen

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestCommandWritesExpected(t *testing.T) {
	s := Spec{Mode: ModeInterleave, Lines: 20, Size: DefaultSize, Tag: "x"}
	var out, errOut bytes.Buffer
	if code := Main(s.Args(), &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	wantOut, wantErr := Expected(s, s.Count())
	if !bytes.Equal(out.Bytes(), wantOut) || !bytes.Equal(errOut.Bytes(), wantErr) {
		t.Fatal("output differs from Expected")
	}
}

func TestCommandCountFile(t *testing.T) {
	cf := filepath.Join(t.TempDir(), "runs")
	s := Spec{Mode: ModeLines, Lines: 3, Size: DefaultSize, Tag: "c", CountFile: cf}
	for n := 1; n <= 2; n++ {
		var out bytes.Buffer
		if code := Main(s.Args(), &out, &bytes.Buffer{}); code != 0 {
			t.Fatalf("run %d: exit %d", n, code)
		}
		r := s
		r.Run = n
		want, _ := Expected(r, r.Count())
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("run %d: output %q, want %q", n, out.Bytes(), want)
		}
	}
	b, err := os.ReadFile(cf)
	if err != nil || string(b) != "2\n" {
		t.Fatalf("counter file = %q, %v", b, err)
	}
}

func TestCommandBadArgs(t *testing.T) {
	var errOut bytes.Buffer
	if code := Main([]string{"-mode", "nope"}, &bytes.Buffer{}, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if code := Main([]string{"-count-file", "/nonexistent-dir/x/y"}, &bytes.Buffer{}, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
}

func TestBumpCounterCorrupt(t *testing.T) {
	cf := filepath.Join(t.TempDir(), "runs")
	if err := os.WriteFile(cf, []byte("nan"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bumpCounter(cf); err == nil {
		t.Fatal("bumpCounter accepted a corrupt file")
	}
}

func TestCommandReport(t *testing.T) {
	rep := filepath.Join(t.TempDir(), "written")
	s := Spec{Mode: ModeLines, Lines: 7, Size: DefaultSize, Report: rep}
	if code := Main(s.Args(), &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if b, err := os.ReadFile(rep); err != nil || string(b) != "7\n" {
		t.Fatalf("report = %q, %v", b, err)
	}
}

// lockedBuffer is a bytes.Buffer that Main and the test may use at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitOutput waits until out holds want.
func waitOutput(t *testing.T, out *lockedBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); out.String() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q, want %q", out.String(), want)
		}
	}
}

// TestCommandBurst: with -sleep, each SIGUSR1 writes -burst more lines of
// the sequence, the report follows, and SIGINT ends the command with 0.
func TestCommandBurst(t *testing.T) {
	rep := filepath.Join(t.TempDir(), "written")
	s := Spec{Mode: ModeSeq, Lines: 3, Size: DefaultSize, Buffer: 4, Sleep: true, Burst: 2, Report: rep}
	var out lockedBuffer
	code := make(chan int, 1)
	go func() { code <- Main(s.Args(), &out, &bytes.Buffer{}) }()
	// The signal handlers are in place before the first line is written.
	waitOutput(t, &out, "1\n2\n3\n")
	for _, want := range []string{"1\n2\n3\n4\n5\n", "1\n2\n3\n4\n5\n6\n7\n"} {
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		waitOutput(t, &out, want)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, _ := os.ReadFile(rep); string(b) == "7\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("report not updated after the bursts")
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if c := <-code; c != 0 {
		t.Fatalf("exit %d after SIGINT", c)
	}
	if strings.Count(out.String(), "\n") != 7 {
		t.Fatalf("output %q", out.String())
	}
}
