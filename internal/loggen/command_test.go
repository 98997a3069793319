package loggen

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
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

// waitOutput waits until the file at path holds want.
func waitOutput(t *testing.T, path, want string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if b, _ := os.ReadFile(path); string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("%s holds %q, want %q", path, b, want)
		}
	}
}

// TestCommandBurst: with -sleep, each SIGUSR1 writes -burst more lines of
// the sequence, the report follows, and SIGINT ends the command with 0.
func TestCommandBurst(t *testing.T) {
	dir := t.TempDir()
	rep, outPath := filepath.Join(dir, "written"), filepath.Join(dir, "out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	s := Spec{Mode: ModeSeq, Lines: 3, Size: DefaultSize, Buffer: 4, Sleep: true, Burst: 2, Report: rep}
	code := make(chan int, 1)
	go func() { code <- Main(s.Args(), out, io.Discard) }()
	// The signal handlers are in place before the first line is written.
	waitOutput(t, outPath, "1\n2\n3\n")
	for _, want := range []string{"1\n2\n3\n4\n5\n", "1\n2\n3\n4\n5\n6\n7\n"} {
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		waitOutput(t, outPath, want)
	}
	waitOutput(t, rep, "7\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if c := <-code; c != 0 {
		t.Fatalf("exit %d after SIGINT", c)
	}
}
