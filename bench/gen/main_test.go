package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/s3logs/s3logs/bench/workload"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-lines", "3"}, 0, "1\n2\n3\n"},
		{[]string{"-lines", "3", "-buf", "1"}, 0, "1\n2\n3\n"},
		{[]string{"-lines", "2", "-rate", "1000"}, 0, "1\n2\n"},
		{[]string{"-kind", "json", "-lines", "2"}, 0, string(workload.AppendJSON(workload.AppendJSON(nil, 0), 1))},
		{[]string{"-kind", "xml"}, 2, ""},
		{[]string{"-lines", "-1"}, 2, ""},
		{[]string{"extra"}, 2, ""},
	} {
		var out bytes.Buffer
		if code := run(tc.args, &out, io.Discard); code != tc.code || out.String() != tc.want {
			t.Errorf("gen %s: exit %d, %q; want %d, %q", strings.Join(tc.args, " "), code, trunc(out.String()), tc.code, trunc(tc.want))
		}
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func TestBurstContinues(t *testing.T) {
	var out bytes.Buffer
	if err := burst(&out, workload.Short, 5, 3, 16); err != nil {
		t.Fatal(err)
	}
	if out.String() != "6\n7\n8\n" {
		t.Fatalf("got %q", out.String())
	}
}
