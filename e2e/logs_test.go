package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
)

// buildCLI builds bin/s3logs for the host into a temporary folder.
func buildCLI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	bin := filepath.Join(dir, "s3logs")
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", bin, "../cmd/s3logs")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build s3logs: %v\n%s", err, out)
	}
	return bin
}

// cli runs `s3logs ARGS` against the suite's MinIO and bucket.
func (s *suite) cli(t testing.TB, bin, bucket string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	full := append([]string{args[0], "--bucket", bucket, "--endpoint", s.minio.Endpoint}, args[1:]...)
	out, errOut, err := run(context.Background(), s.awsEnv, bin, full...)
	if err != nil {
		t.Fatal(err)
	}
	return out, errOut
}

// runJSONFile runs spec to completion with the json-file driver and
// returns its container name.
func (s *suite) runJSONFile(t *testing.T, tag string, spec loggen.Spec) string {
	t.Helper()
	name := s.containerName(tag)
	t.Cleanup(func() { run(context.Background(), nil, "docker", "rm", "-f", name) })
	args := append([]string{"run", "-d", "--name", name, "--label", labelKey + "=" + s.runID, "--network", "none", "--log-driver", "json-file", s.image}, spec.Args()...)
	docker(t, args...)
	if code := strings.TrimSpace(string(docker(t, "wait", name))); code != "0" {
		t.Fatalf("%s exited with %s", name, code)
	}
	return name
}

// dockerLogsArgs returns docker logs output of a container, split by stream.
func dockerLogsArgs(t testing.TB, args ...string) (stdout, stderr []byte) {
	t.Helper()
	out, errOut, err := run(context.Background(), nil, "docker", append([]string{"logs"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out, errOut
}

// untimed drops docker's timestamp (the text up to the first space) from
// every line.
func untimed(t testing.TB, b []byte) []byte {
	t.Helper()
	var out []byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		ts, rest, ok := bytes.Cut(l, []byte(" "))
		if !ok {
			t.Fatalf("line without timestamp: %q", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, string(ts)); err != nil {
			t.Fatalf("timestamp %q: %v", ts, err)
		}
		out = append(out, rest...)
	}
	return out
}

// TestCLILogs: `s3logs logs` prints what `docker logs` prints for the same
// workload run with the json-file driver, byte for byte, per stream: in
// full, with --timestamps (lines only), with --tail, and within a
// --since/--until window; and `s3logs ls` lists the container.
func TestCLILogs(t *testing.T) {
	s := newSuite(t)
	bin := buildCLI(t)
	cases := []struct {
		tag  string
		spec loggen.Spec
		// docker logs -t and --tail count json-file's 16 KiB pieces of a
		// long line as lines; s3logs stores and counts whole lines.
		pieces bool
		// Between two runs the order of stdout and stderr lines differs,
		// so --tail (the last lines of both together) is compared with
		// docker logs only for one stream.
		bothStreams bool
	}{
		{"cli-interleave", loggen.Spec{Mode: loggen.ModeInterleave, Lines: 3000}, false, true},
		{"cli-notrail", loggen.Spec{Mode: loggen.ModeNoTrail, Lines: 50}, false, false},
		{"cli-big", loggen.Spec{Mode: loggen.ModeBig, Lines: 20, Size: 100 << 10}, true, false},
		{"cli-utf8", loggen.Spec{Mode: loggen.ModeUTF8, Lines: 400}, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.tag, func(t *testing.T) {
			t.Parallel()
			spec := tc.spec
			spec.Tag = s.containerName(tc.tag) // same lines in both runs
			c := s.start(t, tc.tag, spec)
			exited := c.wait(t)
			wantOut, wantErr := loggen.Expected(c.spec, c.spec.Count())
			wantOut, wantErr = expectJSONFile(wantOut), expectJSONFile(wantErr)
			c.waitContent(t, exited, exited.Add(slowDeadline), wantOut, wantErr)
			ref := s.runJSONFile(t, tc.tag+"-jf", spec)

			refOut, refErr := dockerLogsArgs(t, ref)
			if !bytes.Equal(refOut, wantOut) || !bytes.Equal(refErr, wantErr) {
				t.Fatalf("json-file's docker logs differs from the generator: %s / %s", diff(refOut, wantOut), diff(refErr, wantErr))
			}
			out, errOut := s.cli(t, bin, c.bucket, "logs", c.name)
			if !bytes.Equal(out, refOut) || !bytes.Equal(errOut, refErr) {
				t.Fatalf("s3logs logs differs from docker logs (json-file):\nstdout: %s\nstderr: %s", diff(out, refOut), diff(errOut, refErr))
			}
			if !tc.pieces {
				rOut, rErr := dockerLogsArgs(t, "--timestamps", ref)
				out, errOut := s.cli(t, bin, c.bucket, "logs", "--timestamps", c.name)
				if !bytes.Equal(untimed(t, out), untimed(t, rOut)) || !bytes.Equal(untimed(t, errOut), untimed(t, rErr)) {
					t.Fatalf("--timestamps lines differ:\nstdout: %s\nstderr: %s", diff(untimed(t, out), untimed(t, rOut)), diff(untimed(t, errOut), untimed(t, rErr)))
				}
			}
			for _, n := range []string{"0", "1", "7", "100000"} {
				if tc.pieces || tc.bothStreams {
					break
				}
				rOut, rErr := dockerLogsArgs(t, "--tail", n, ref)
				out, errOut := s.cli(t, bin, c.bucket, "logs", "--tail", n, c.name)
				if !bytes.Equal(out, rOut) || !bytes.Equal(errOut, rErr) {
					t.Fatalf("--tail %s differs:\nstdout: %s\nstderr: %s", n, diff(out, rOut), diff(errOut, rErr))
				}
			}
			// A window: the records whose stored time is in it, from the
			// json output (the stored records unchanged).
			js, _ := s.cli(t, bin, c.bucket, "logs", "--output", "json", c.name)
			var recs []record
			for _, l := range bytes.Split(bytes.TrimSuffix(js, []byte("\n")), []byte("\n")) {
				var r record
				if err := json.Unmarshal(l, &r); err != nil {
					t.Fatalf("--output json line %q: %v", l, err)
				}
				recs = append(recs, r)
			}
			if len(recs) != c.spec.Count() && tc.spec.Mode != loggen.ModeBig {
				t.Fatalf("--output json: %d records for %d lines", len(recs), c.spec.Count())
			}
			// --tail N is the last N stored records, whatever the streams.
			for _, n := range []int{1, 7, len(recs) + 5} {
				var wOut, wErr []byte
				for _, r := range recs[max(0, len(recs)-n):] {
					if r.Stream == "stderr" {
						wErr = append(wErr, r.Log...)
					} else {
						wOut = append(wOut, r.Log...)
					}
				}
				out, errOut := s.cli(t, bin, c.bucket, "logs", "--tail", strconv.Itoa(n), c.name)
				if !bytes.Equal(out, wOut) || !bytes.Equal(errOut, wErr) {
					t.Fatalf("--tail %d against the stored records:\nstdout: %s\nstderr: %s", n, diff(out, wOut), diff(errOut, wErr))
				}
			}
			lo, hi := recs[len(recs)/4].Time, recs[len(recs)*3/4].Time
			tl, _ := time.Parse(time.RFC3339Nano, lo)
			th, _ := time.Parse(time.RFC3339Nano, hi)
			var wOut, wErr []byte
			for _, r := range recs {
				tr, err := time.Parse(time.RFC3339Nano, r.Time)
				if err != nil {
					t.Fatal(err)
				}
				if tr.Before(tl) || tr.After(th) {
					continue
				}
				if r.Stream == "stderr" {
					wErr = append(wErr, r.Log...)
				} else {
					wOut = append(wOut, r.Log...)
				}
			}
			out, errOut = s.cli(t, bin, c.bucket, "logs", "--since", lo, "--until", hi, c.name)
			if !bytes.Equal(out, wOut) || !bytes.Equal(errOut, wErr) || len(out)+len(errOut) == 0 {
				t.Fatalf("--since %s --until %s:\nstdout: %s\nstderr: %s", lo, hi, diff(out, wOut), diff(errOut, wErr))
			}

			ls, _ := s.cli(t, bin, c.bucket, "ls", "-o", "json")
			var row struct {
				Name    string `json:"name"`
				ID      string `json:"id"`
				Objects int    `json:"objects"`
			}
			if err := json.Unmarshal(ls, &row); err != nil || row.Name != c.name || !strings.HasPrefix(c.id(t), row.ID) || row.Objects < 1 {
				t.Fatalf("ls: %s (%v)", ls, err)
			}
		})
	}
}

// TestCLIMergeAndFollow: two containers logging at once are merged by
// time with their names; --follow prints lines written after it started;
// a missing container exits 3 naming where it looked.
func TestCLIMergeAndFollow(t *testing.T) {
	s := newSuite(t)
	bin := buildCLI(t)
	bucket := s.bucketName("cli-merge")
	s.createBucket(t, bucket)
	spec := loggen.Spec{Mode: loggen.ModeInterleave, Lines: 300, Rate: 100}
	var cs []*container
	for _, tag := range []string{"merge-a", "merge-b"} {
		c := &container{s: s, name: s.containerName(tag), bucket: bucket, spec: spec}
		c.prefix = c.name + "/"
		c.run(t, "segment-age=1s")
		cs = append(cs, c)
	}

	// Follow both from the start, while they log.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	follow := exec.CommandContext(ctx, bin, "logs", "--bucket", bucket, "--endpoint", s.minio.Endpoint, "--follow", "--poll", "200ms", "--timestamps", cs[0].name, cs[1].name)
	follow.Env = s.awsEnv
	pipe, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var followErr bytes.Buffer
	follow.Stderr = &followErr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var followed []string
	done := make(chan struct{})
	go func() { // ends when the follow process exits
		defer close(done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			mu.Lock()
			followed = append(followed, sc.Text())
			mu.Unlock()
		}
	}()

	var want []string
	for _, c := range cs {
		exited := c.wait(t)
		wOut, wErr := loggen.Expected(c.spec, c.spec.Count())
		c.waitContent(t, exited, exited.Add(slowDeadline), wOut, wErr)
		for _, l := range strings.SplitAfter(string(wOut), "\n") {
			if l != "" {
				want = append(want, c.name+"  | "+strings.TrimSuffix(l, "\n"))
			}
		}
	}
	// The merged read: every line once with its name, times in order.
	out, _ := s.cli(t, bin, bucket, "logs", "--timestamps", cs[0].name, cs[1].name)
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	// checkMerged checks that every line is there once with its name,
	// in time order: across containers (global) or within each.
	checkMerged := func(what string, lines []string, global bool) {
		t.Helper()
		var got []string
		prevOf := map[string]time.Time{}
		for _, l := range lines {
			name, rest, ok := strings.Cut(l, "  | ")
			ts, text, ok2 := strings.Cut(rest, " ")
			tm, err := time.Parse(time.RFC3339Nano, ts)
			if !ok || !ok2 || err != nil {
				t.Fatalf("%s: line %q", what, l)
			}
			key := name
			if global {
				key = ""
			}
			if tm.Before(prevOf[key]) {
				t.Fatalf("%s: %q out of time order (after %v)", what, l, prevOf[key])
			}
			prevOf[key] = tm
			got = append(got, name+"  | "+text)
		}
		g, w := slices.Clone(got), slices.Clone(want)
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Fatalf("%s: %d lines, want %d", what, len(g), len(w))
		}
	}
	checkMerged("merged logs", lines, true)

	// The follow saw everything, though all of it was written after it started.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(followed)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
	follow.Wait()
	mu.Lock()
	// Following prints each poll's new objects merged; a container whose
	// segment reaches S3 later is printed later.
	checkMerged("--follow", followed, false)
	mu.Unlock()

	// A name that is not there: exit status 3 and the prefixes looked at.
	_, errOut, err := run(context.Background(), s.awsEnv, bin, "logs", "--bucket", bucket, "--endpoint", s.minio.Endpoint, "--since", "1h", "no-such-container")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(errOut), `"no-such-container/`) {
		t.Fatalf("missing container: %v, %s", err, errOut)
	}
}
