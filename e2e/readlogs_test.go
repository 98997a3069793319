package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
)

// lastLines returns the last n lines of the records a workload wrote to
// both streams, in write order, split by stream.
func lastLines(spec loggen.Spec, n int) (stdout, stderr []byte) {
	total := spec.Count()
	for i := max(0, total-n); i < total; i++ {
		w := spec.Write(i)
		if w.Stream == loggen.Stderr {
			stderr = append(stderr, w.Data...)
		} else {
			stdout = append(stdout, w.Data...)
		}
	}
	return stdout, stderr
}

// TestReadLogs: with the READ_LOGS setting on, docker logs is served by
// s3logs and equals what json-file's docker logs prints (loggen.Expected,
// checked against json-file in TestCLILogs): for a history of 120 MB, more
// than Docker's cache keeps by default (5 x 20 MB), read from S3; for a
// running container whose records are only in the segment being written;
// with --tail and --since; and with -f while the container logs. Reading a
// stopped container's logs (StartLogging, ReadLogs, StopLogging) adds no
// object.
func TestReadLogs(t *testing.T) {
	s := newSuite(t)
	s.setPlugin(t, "READ_LOGS=true")
	t.Cleanup(func() { s.setPlugin(t, "READ_LOGS=false") })
	t.Cleanup(func() { s.checkSpoolDrained(t) })

	t.Run("history", func(t *testing.T) {
		spec := loggen.Spec{Mode: loggen.ModeBig, Lines: 120_000, Size: 1000}
		c := s.start(t, "rl-history", spec, "segment-size=16m")
		exited := c.wait(t)
		wantOut, _ := loggen.Expected(c.spec, c.spec.Count())
		objs, _ := c.waitContent(t, exited, exited.Add(slowDeadline), wantOut, nil)
		t.Logf("%d bytes in %d objects", len(wantOut), len(objs))
		out, errOut := dockerLogsArgs(t, c.name)
		if !bytes.Equal(out, wantOut) || len(errOut) != 0 {
			t.Fatalf("docker logs: stdout %s, stderr %q", diff(out, wantOut), trunc(errOut))
		}
		for _, n := range []int{0, 1, 250} {
			tOut, _ := lastLines(c.spec, n)
			out, _ := dockerLogsArgs(t, "--tail", strconv.Itoa(n), c.name)
			if !bytes.Equal(out, tOut) {
				t.Fatalf("docker logs --tail %d: %s", n, diff(out, tOut))
			}
		}
		out, _ = dockerLogsArgs(t, "--since", time.Now().Add(time.Minute).Format(time.RFC3339), c.name)
		if len(out) != 0 {
			t.Fatalf("--since after the last record printed %d bytes", len(out))
		}
		out, _ = dockerLogsArgs(t, "--since", "1h", c.name)
		if !bytes.Equal(out, wantOut) {
			t.Fatalf("--since 1h: %s", diff(out, wantOut))
		}
		after, err := s.list(context.Background(), c.bucket, "")
		if err != nil || len(after) != len(objs) {
			t.Fatalf("reading the logs of a stopped container changed the objects: %d before, %d after (%v)", len(objs), len(after), err)
		}
	})

	t.Run("running", func(t *testing.T) {
		// Written, then waiting: every record is in the open segment. One
		// stream, so --tail's last lines do not depend on how Docker's two
		// copiers interleaved stdout and stderr.
		spec := loggen.Spec{Mode: loggen.ModeLines, Lines: 2000, Sleep: true}
		c := s.start(t, "rl-running", spec, "segment-age=1h")
		wantOut, wantErr := loggen.Expected(c.spec, c.spec.Count())
		deadline := time.Now().Add(slowDeadline)
		var out, errOut []byte
		for time.Now().Before(deadline) {
			out, errOut = dockerLogsArgs(t, c.name)
			if bytes.Equal(out, wantOut) && bytes.Equal(errOut, wantErr) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !bytes.Equal(out, wantOut) || !bytes.Equal(errOut, wantErr) {
			t.Fatalf("docker logs of a running container:\nstdout: %s\nstderr: %s", diff(out, wantOut), diff(errOut, wantErr))
		}
		if objs, _ := s.list(context.Background(), c.bucket, ""); len(objs) != 0 {
			t.Fatalf("%d objects: the records were expected only in the spool", len(objs))
		}
		tOut, tErr := lastLines(c.spec, 10)
		out, errOut = dockerLogsArgs(t, "--tail", "10", c.name)
		if !bytes.Equal(out, tOut) || !bytes.Equal(errOut, tErr) {
			t.Fatalf("--tail 10 of a running container:\nstdout: %s\nstderr: %s", diff(out, tOut), diff(errOut, tErr))
		}
		c.stop(t)
	})

	t.Run("follow", func(t *testing.T) {
		spec := loggen.Spec{Mode: loggen.ModeInterleave, Lines: 400, Rate: 100}
		c := s.start(t, "rl-follow", spec, "segment-age=2s")
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second) // under the plugin's 30 s request timeout
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", "logs", "-f", c.name)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("docker logs -f: %v (%s)", err, trunc(errOut.Bytes()))
		}
		wantOut, wantErr := loggen.Expected(c.spec, c.spec.Count())
		if !bytes.Equal(out.Bytes(), wantOut) || !bytes.Equal(errOut.Bytes(), wantErr) {
			t.Fatalf("docker logs -f (ends when the container stops):\nstdout: %s\nstderr: %s", diff(out.Bytes(), wantOut), diff(errOut.Bytes(), wantErr))
		}
		c.wait(t)
	})
}
