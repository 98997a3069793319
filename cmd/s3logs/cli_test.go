package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s3logs/s3logs/driver/record"
	"github.com/s3logs/s3logs/reader"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"10m", now.Add(-10 * time.Minute), false},
		{"2h", now.Add(-2 * time.Hour), false},
		{"3d", now.Add(-72 * time.Hour), false},
		{"1d12h", now.Add(-36 * time.Hour), false},
		{"1h30m", now.Add(-90 * time.Minute), false},
		{"2026-11-30T10:00:00Z", time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), false},
		{"2026-11-30T10:00:00.5+01:00", time.Date(2026, 11, 30, 9, 0, 0, 5e8, time.UTC), false},
		{"2026-11-29", time.Date(2026, 11, 29, 0, 0, 0, 0, time.Local), false},
		{"2026-11-29T08:30:00", time.Date(2026, 11, 29, 8, 30, 0, 0, time.Local), false},
		{"1764500000", time.Unix(1764500000, 0), false},
		{"1764500000.25", time.Unix(1764500000, 25e7), false},
		{"yesterday", time.Time{}, true},
		{"-5m", time.Time{}, true},
		{"5x", time.Time{}, true},
		{"2026-13-01", time.Time{}, true},
	}
	for _, tt := range tests {
		got, err := parseTime(tt.in, now)
		if (err != nil) != tt.err || !got.Equal(tt.want) {
			t.Errorf("%q: %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseFlagsInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	tail := fs.String("tail", "all", "")
	f := fs.Bool("f", false, "")
	pos, err := parseFlags(fs, []string{"web", "--tail", "5", "db", "-f"})
	if err != nil || !slices.Equal(pos, []string{"web", "db"}) || *tail != "5" || !*f {
		t.Errorf("%q %v tail=%s f=%v", pos, err, *tail, *f)
	}
}

// TestPrinter checks docker logs' output forms.
func TestPrinter(t *testing.T) {
	tm := time.Date(2026, 11, 30, 1, 2, 3, 4000, time.UTC)
	c := &reader.Container{ID: "abc", Name: "web"}
	rec := func(src, log string) *reader.Record {
		r := record.Record{Line: []byte(strings.TrimSuffix(log, "\n")), Newline: strings.HasSuffix(log, "\n"), Source: src, Time: tm}
		raw := record.AppendJSON(nil, &r, nil)
		return &reader.Record{Container: c, Stored: record.Stored{Log: []byte(log), Source: src, Time: tm}, Raw: raw[:len(raw)-1]}
	}
	for _, tt := range []struct {
		p            printer
		out, errText string
	}{
		{printer{raw: true}, "a\nno newline", "e\n"},
		{printer{raw: true, timestamps: true}, "2026-11-30T01:02:03.000004000Z a\n2026-11-30T01:02:03.000004000Z no newline", "2026-11-30T01:02:03.000004000Z e\n"},
		{printer{raw: true, multi: true}, "web  | a\nweb  | no newline", "web  | e\n"},
		{printer{raw: false}, `{"log":"a\n","stream":"stdout","time":"2026-11-30T01:02:03.000004Z"}` + "\n" + `{"log":"e\n","stream":"stderr","time":"2026-11-30T01:02:03.000004Z"}` + "\n" + `{"log":"no newline","stream":"stdout","time":"2026-11-30T01:02:03.000004Z"}` + "\n", ""},
	} {
		var o, e bytes.Buffer
		ow, ew := bufio.NewWriter(&o), bufio.NewWriter(&e)
		for _, r := range []*reader.Record{rec("stdout", "a\n"), rec("stderr", "e\n"), rec("stdout", "no newline")} {
			tt.p.print(ow, ew, r)
		}
		ow.Flush()
		ew.Flush()
		if o.String() != tt.out || e.String() != tt.errText {
			t.Errorf("%+v:\nstdout %q\nstderr %q", tt.p, o.String(), e.String())
		}
	}
}

// TestCLIErrors checks the exit codes of bad usage.
func TestCLIErrors(t *testing.T) {
	env := func(string) string { return "" }
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, exitUsage, "Usage"},
		{[]string{"nope"}, exitUsage, `unknown command "nope"`},
		{[]string{"logs", "web"}, exitUsage, "--bucket"},
		{[]string{"logs", "--bucket", "b"}, exitUsage, "at least one container"},
		{[]string{"logs", "--bucket", "b", "--tail", "x", "web"}, exitUsage, `--tail "x"`},
		{[]string{"logs", "--bucket", "b", "--since", "soon", "web"}, exitUsage, `time "soon"`},
		{[]string{"logs", "--bucket", "b", "--prefix", "{{if .Name}}x{{end}}/", "web"}, exitUsage, "cannot be walked"},
		{[]string{"ls", "--bucket", "b", "-o", "yaml"}, exitUsage, `--output "yaml"`},
	} {
		var e bytes.Buffer
		if code := cli(context.Background(), tt.args, io.Discard, &e, env); code != tt.code || !strings.Contains(e.String(), tt.msg) {
			t.Errorf("%q: exit %d, %q", tt.args, code, e.String())
		}
	}
}
