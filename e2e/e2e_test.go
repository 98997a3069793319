package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3logs/s3logs/internal/loggen"
)

// TestE2E runs every end-to-end case as a parallel subtest against one
// MinIO server and the installed plugin.
func TestE2E(t *testing.T) {
	s := newSuite(t)
	start := time.Now()
	// Runs after every subtest and its container cleanup, before the
	// plugin settings are restored.
	t.Cleanup(func() {
		t.Logf("e2e cases took %v", time.Since(start).Round(100*time.Millisecond))
		s.checkSpoolDrained(t)
	})

	// exits runs spec to completion and checks its content, complete in S3
	// within deadline of the exit.
	exits := func(t *testing.T, tag string, spec loggen.Spec, deadline time.Duration) (*container, []object) {
		c := s.start(t, tag, spec)
		exited := c.wait(t)
		wantOut, wantErr := loggen.Expected(c.spec, c.spec.Count())
		wantOut, wantErr = expectJSONFile(wantOut), expectJSONFile(wantErr)
		objs, took := c.waitContent(t, exited, exited.Add(deadline), wantOut, wantErr)
		t.Logf("%s: %d objects complete %v after exit", c.name, len(objs), took.Round(time.Millisecond))
		st := c.verifyCLI(t, objs, wantOut, wantErr)
		// Every generator write is one line under 1 MiB, so one record
		// (lines Docker split into 16 KiB partials are reassembled).
		if st.records != c.spec.Count() {
			t.Errorf("%d records for %d lines", st.records, c.spec.Count())
		}
		return c, objs
	}

	// stopWhileLogging stops a container after logFor of logging spec and
	// checks that S3 ends up with exactly the whole-line prefix the generator
	// wrote (it reports its line count in a file) within exitBound of the
	// stop. With checkDockerLogs, docker logs (Docker's own cache) must agree
	// too.
	stopWhileLogging := func(t *testing.T, tag string, spec loggen.Spec, logFor time.Duration, minLines int, checkDockerLogs bool) {
		spec.Report = "/written"
		c := s.start(t, tag, spec)
		time.Sleep(logFor) // let it log for a while
		if !c.running(t) {
			t.Fatal("container not running")
		}
		stopped := c.stop(t)
		n := c.reportedLines(t)
		if n < minLines {
			t.Fatalf("only %d lines logged before stop, want at least %d", n, minLines)
		}
		wantOut, _ := loggen.Expected(c.spec, n)
		objs, took := c.waitContent(t, stopped, stopped.Add(exitBound), wantOut, nil)
		t.Logf("%d lines (%d bytes), %d objects complete %v after docker stop returned", n, len(wantOut), len(objs), took.Round(time.Millisecond))
		got, gotErr := c.dockerLogs(t)
		if checkDockerLogs {
			if !bytes.Equal(got, wantOut) || len(gotErr) != 0 {
				t.Fatalf("docker logs differs from what the generator wrote:\nstdout: %s\nstderr: %q", diff(got, wantOut), gotErr)
			}
		} else if !bytes.Equal(got, wantOut) {
			// Docker's dual-logging cache is not s3logs; seen to lose and
			// reorder lines at this rate on Engine 20.10, so only reported.
			t.Logf("note: docker logs (Docker's cache) differs from what the generator wrote: %s", diff(got, wantOut))
		}
		c.verifyCLI(t, objs, wantOut, nil)
	}

	// Not parallel: it runs alone before the parallel cases, so the time it
	// logs (exit to S3) is that of a container that saturates the pipe,
	// without the other cases competing for the two CPUs.
	t.Run("stop-while-logging-full-speed", func(t *testing.T) {
		// No rate limit: the pipe to Docker is full when the stop comes.
		stopWhileLogging(t, "stopfast", loggen.Spec{Mode: loggen.ModeLines, Lines: 20_000_000}, time.Second, 10000, false)
	})

	t.Run("short-lines", func(t *testing.T) {
		t.Parallel()
		c, objs := exits(t, "short", loggen.Spec{Mode: loggen.ModeLines, Lines: 20000}, exitBound)
		// Object headers: raw zstd, no Content-Encoding, s3logs metadata.
		id := c.id(t)
		for _, o := range objs {
			h, err := s.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(o.Key)})
			if err != nil {
				t.Fatalf("HeadObject %s: %v", o.Key, err)
			}
			if ct := aws.ToString(h.ContentType); ct != "application/zstd" {
				t.Errorf("%s: Content-Type %q, want application/zstd", o.Key, ct)
			}
			if ce := aws.ToString(h.ContentEncoding); ce != "" {
				t.Errorf("%s: Content-Encoding %q, want none", o.Key, ce)
			}
			hasID := false
			for _, v := range h.Metadata {
				hasID = hasID || v == id
			}
			if !hasID {
				t.Errorf("%s: user metadata %v does not name the container id %s", o.Key, h.Metadata, id)
			}
			if !strings.HasSuffix(o.Key, ".jsonl.zst") {
				t.Errorf("%s: key does not end in .jsonl.zst", o.Key)
			}
			t.Logf("%s: %d bytes, metadata %v", o.Key, o.Size, h.Metadata)
		}
	})

	t.Run("interleaved", func(t *testing.T) {
		t.Parallel()
		exits(t, "interleaved", loggen.Spec{Mode: loggen.ModeInterleave, Lines: 6000}, exitBound)
	})

	t.Run("100KiB-lines", func(t *testing.T) {
		t.Parallel()
		exits(t, "big", loggen.Spec{Mode: loggen.ModeBig, Lines: 24, Size: 100 << 10}, exitBound)
	})

	t.Run("utf8-torture", func(t *testing.T) {
		t.Parallel()
		exits(t, "utf8", loggen.Spec{Mode: loggen.ModeUTF8, Lines: 20 * len(loggen.TortureLines)}, exitBound)
	})

	t.Run("invalid-utf8", func(t *testing.T) {
		t.Parallel()
		// json-file replaces every byte that is not valid UTF-8 by U+FFFD.
		exits(t, "invalid", loggen.Spec{Mode: loggen.ModeInvalidUTF8, Lines: 10 * len(loggen.InvalidLines)}, exitBound)
	})

	t.Run("no-trailing-newline", func(t *testing.T) {
		t.Parallel()
		exits(t, "notrail", loggen.Spec{Mode: loggen.ModeNoTrail, Lines: 50}, exitBound)
	})

	t.Run("rotation-by-size", func(t *testing.T) {
		t.Parallel()
		const segSize = 64 << 10
		c := s.start(t, "size", loggen.Spec{Mode: loggen.ModeBulk, Lines: 20000, Size: 200}, "segment-size=64k")
		exited := c.wait(t)
		wantOut, wantErr := loggen.Expected(c.spec, c.spec.Count())
		objs, took := c.waitContent(t, exited, exited.Add(slowDeadline), wantOut, wantErr)
		t.Logf("%d objects complete %v after exit", len(objs), took.Round(time.Millisecond))
		// ~4 MB of text compressing to ~3 MB must give dozens of 64 KiB objects.
		if len(objs) < 20 {
			t.Errorf("%d objects for %d bytes with segment-size=64k, want at least 20", len(objs), len(wantOut))
		}
		seen := map[string]bool{}
		var largest int64
		for _, o := range objs {
			if seen[o.Key] {
				t.Errorf("key %s listed twice", o.Key)
			}
			seen[o.Key] = true
			largest = max(largest, o.Size)
		}
		// A segment closes at the first record past the limit; records
		// here are ~300 bytes, so a segment stays near 64 KiB.
		if largest > 2*segSize {
			t.Errorf("largest object %d bytes with segment-size=64k", largest)
		}
		t.Logf("largest object %d bytes", largest)
		c.verifyCLI(t, objs, wantOut, wantErr)
	})

	t.Run("rotation-by-age", func(t *testing.T) {
		t.Parallel()
		spec := loggen.Spec{Mode: loggen.ModeLines, Lines: 5, Sleep: true}
		// Taken before docker run: the first record, and so the segment's
		// age, cannot start earlier, so a slow machine cannot make the
		// upload look early.
		started := time.Now()
		c := s.start(t, "age", spec, "segment-age=2s")
		wantOut, wantErr := loggen.Expected(c.spec, c.spec.Count())
		objs, took := c.waitContent(t, started, started.Add(20*time.Second), wantOut, wantErr)
		if !c.running(t) {
			t.Fatal("container stopped: the segment must be uploaded while it still runs")
		}
		t.Logf("quiet container's segment uploaded %v after start (segment-age=2s), %d objects", took.Round(time.Millisecond), len(objs))
		if took < 2*time.Second {
			t.Errorf("segment uploaded after %v, before segment-age=2s", took)
		}
		c.verifyCLI(t, objs, wantOut, wantErr)
	})

	t.Run("stop-while-logging", func(t *testing.T) {
		t.Parallel()
		stopWhileLogging(t, "stop", loggen.Spec{Mode: loggen.ModeLines, Lines: 1_000_000, Rate: 2000}, 2*time.Second, 1000, true)
	})

	t.Run("restart", func(t *testing.T) {
		t.Parallel()
		spec := loggen.Spec{Mode: loggen.ModeLines, Lines: 300, Rate: 1000, Sleep: true, CountFile: "/runs"}
		c := s.start(t, "restart", spec)
		run1, run2 := c.spec, c.spec
		run1.Run, run2.Run = 1, 2
		want1, _ := loggen.Expected(run1, run1.Count())
		want2, _ := loggen.Expected(run2, run2.Count())
		c.waitDockerLogs(t, want1)
		docker(t, "restart", "-t", "10", c.name)
		restarted := time.Now()
		objs1, took := c.waitContent(t, restarted, restarted.Add(exitBound), want1, nil)
		t.Logf("run 1: %d objects complete %v after docker restart returned", len(objs1), took.Round(time.Millisecond))
		both := append(bytes.Clone(want1), want2...)
		c.waitDockerLogs(t, both)
		stopped := c.stop(t)
		objs, took := c.waitContent(t, stopped, stopped.Add(exitBound), both, nil)
		t.Logf("both runs: %d objects complete %v after docker stop returned", len(objs), took.Round(time.Millisecond))
		final := map[string]string{}
		for _, o := range objs {
			final[o.Key] = o.ETag
		}
		for _, o := range objs1 {
			if final[o.Key] != o.ETag {
				t.Errorf("run 1 object %s was overwritten or removed (ETag %s -> %q)", o.Key, o.ETag, final[o.Key])
			}
		}
		if len(objs) <= len(objs1) {
			t.Errorf("run 2 added no object: %d before, %d after", len(objs1), len(objs))
		}
		c.verifyCLI(t, objs, both, nil)
	})

	t.Run("several-containers", func(t *testing.T) {
		t.Parallel()
		const n = 5
		bucket := s.bucketName("multi")
		s.createBucket(t, bucket)
		cs := make([]*container, n)
		for i := range cs {
			cs[i] = &container{s: s, name: s.containerName(fmt.Sprintf("multi%d", i)), bucket: bucket,
				prefix: fmt.Sprintf("multi/c%d/", i), spec: loggen.Spec{Mode: loggen.ModeInterleave, Lines: 3000}}
			cs[i].run(t, "prefix="+cs[i].prefix)
		}
		for _, c := range cs {
			exited := c.wait(t)
			wantOut, wantErr := loggen.Expected(c.spec, c.spec.Count())
			objs, took := c.waitContent(t, exited, exited.Add(slowDeadline), wantOut, wantErr)
			t.Logf("%s: %d objects complete %v after exit", c.name, len(objs), took.Round(time.Millisecond))
			c.verifyCLI(t, objs, wantOut, wantErr)
		}
	})

	t.Run("docker-logs", func(t *testing.T) {
		t.Parallel()
		// Docker's own options are accepted silently; the cache serves docker logs.
		c := s.start(t, "dlogs", loggen.Spec{Mode: loggen.ModeInterleave, Lines: 600},
			"mode=non-blocking", "max-buffer-size=4m", "cache-disabled=false",
			"cache-max-size=10m", "cache-max-file=2", "cache-compress=false")
		exited := c.wait(t)
		wantOut, wantErr := loggen.Expected(c.spec, c.spec.Count())
		objs, _ := c.waitContent(t, exited, exited.Add(exitBound), wantOut, wantErr)
		gotOut, gotErr := c.dockerLogs(t)
		if !bytes.Equal(gotOut, wantOut) || !bytes.Equal(gotErr, wantErr) {
			t.Fatalf("docker logs differs:\nstdout: %s\nstderr: %s", diff(gotOut, wantOut), diff(gotErr, wantErr))
		}
		// docker logs may open a second logging session; it must not leave
		// an (empty) object behind. Watch a little longer than the 5 s it
		// would take to show up.
		time.Sleep(exitDeadline + time.Second)
		after, err := s.list(context.Background(), c.bucket, c.prefix)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(after) != fmt.Sprint(objs) {
			t.Fatalf("objects changed after docker logs:\nbefore %v\nafter  %v", objs, after)
		}
		c.verifyCLI(t, objs, wantOut, wantErr)
	})

	t.Run("bad-log-opts", func(t *testing.T) {
		t.Parallel()
		bucket := s.bucketName("badopts")
		s.createBucket(t, bucket)
		endpoint := "endpoint=" + s.minio.Endpoint
		cases := []struct {
			name string
			opts []string
			want []string // substrings of docker run's stderr
		}{
			{"unknown option", []string{endpoint, "bucket=" + bucket, "nope=1"}, []string{"nope", "bucket", "segment-size"}},
			{"segment-size unit", []string{endpoint, "bucket=" + bucket, "segment-size=10XB"}, []string{"segment-size", "10XB"}},
			{"segment-age negative", []string{endpoint, "bucket=" + bucket, "segment-age=-1s"}, []string{"segment-age", "-1s"}},
			{"endpoint not a url", []string{"endpoint=not a url", "bucket=" + bucket}, []string{"endpoint"}},
			{"bucket empty", []string{endpoint, "bucket="}, []string{"bucket"}},
			{"bucket missing", []string{endpoint}, []string{"bucket"}},
			{"prefix template", []string{endpoint, "bucket=" + bucket, "prefix={{.Nope}}"}, []string{"prefix"}},
			{"prefix unparsable", []string{endpoint, "bucket=" + bucket, "prefix={{.Name"}, []string{"prefix"}},
			{"compression-level", []string{endpoint, "bucket=" + bucket, "compression-level=ultra"}, []string{"compression-level", "ultra"}},
			{"sse", []string{endpoint, "bucket=" + bucket, "sse=foo"}, []string{"sse", "foo"}},
			{"force-path-style", []string{endpoint, "bucket=" + bucket, "force-path-style=maybe"}, []string{"force-path-style"}},
		}
		for i, tc := range cases {
			name := s.containerName(fmt.Sprintf("bad%d", i))
			t.Cleanup(func() { _, _, _ = run(context.Background(), nil, "docker", "rm", "-f", name) })
			_, stderr, err := run(context.Background(), nil, "docker", s.runArgs(name, tc.opts, loggen.Spec{Mode: loggen.ModeLines, Lines: 1})...)
			if err == nil {
				t.Errorf("%s: docker run %v succeeded, want failure", tc.name, tc.opts)
				continue
			}
			msg := string(stderr)
			for _, w := range append([]string{"logging driver"}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("%s: docker run stderr lacks %q:\n%s", tc.name, w, msg)
				}
			}
			t.Logf("%s: %s", tc.name, strings.TrimSpace(msg))
		}
		objs, err := s.list(context.Background(), bucket, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 0 {
			t.Errorf("failed containers left objects: %v", objs)
		}
	})
}

// waitDockerLogs polls docker logs until stdout equals want.
func (c *container) waitDockerLogs(t testing.TB, want []byte) {
	t.Helper()
	deadline := time.Now().Add(slowDeadline)
	for {
		got, _ := c.dockerLogs(t)
		if bytes.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker logs of %s: %s", c.name, diff(got, want))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
