package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/s3logs/s3logs/internal/loggen"
)

func TestRunWritesExpected(t *testing.T) {
	s := loggen.Spec{Mode: loggen.ModeInterleave, Lines: 20, Size: loggen.DefaultSize, Tag: "x"}
	var out, errOut bytes.Buffer
	if code := run(s.Args(), &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	wantOut, wantErr := loggen.Expected(s, s.Count())
	if !bytes.Equal(out.Bytes(), wantOut) || !bytes.Equal(errOut.Bytes(), wantErr) {
		t.Fatal("output differs from loggen.Expected")
	}
}

func TestRunCountFile(t *testing.T) {
	cf := filepath.Join(t.TempDir(), "runs")
	s := loggen.Spec{Mode: loggen.ModeLines, Lines: 3, Size: loggen.DefaultSize, Tag: "c", CountFile: cf}
	for n := 1; n <= 2; n++ {
		var out bytes.Buffer
		if code := run(s.Args(), &out, &bytes.Buffer{}); code != 0 {
			t.Fatalf("run %d: exit %d", n, code)
		}
		r := s
		r.Run = n
		want, _ := loggen.Expected(r, r.Count())
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("run %d: output %q, want %q", n, out.Bytes(), want)
		}
	}
	b, err := os.ReadFile(cf)
	if err != nil || string(b) != "2\n" {
		t.Fatalf("counter file = %q, %v", b, err)
	}
}

func TestRunBadArgs(t *testing.T) {
	var errOut bytes.Buffer
	if code := run([]string{"-mode", "nope"}, &bytes.Buffer{}, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if code := run([]string{"-count-file", "/nonexistent-dir/x/y"}, &bytes.Buffer{}, &errOut); code != 1 {
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

func TestRunReport(t *testing.T) {
	rep := filepath.Join(t.TempDir(), "written")
	s := loggen.Spec{Mode: loggen.ModeLines, Lines: 7, Size: loggen.DefaultSize, Report: rep}
	if code := run(s.Args(), &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if b, err := os.ReadFile(rep); err != nil || string(b) != "7\n" {
		t.Fatalf("report = %q, %v", b, err)
	}
}
