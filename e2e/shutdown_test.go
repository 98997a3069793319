package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
)

// TestEphemeralHost is the host that goes away: four containers have each
// logged 2,000,000 lines at full speed and are still running when dockerd
// gets SIGTERM, with S3 up. Docker stops the containers, then the plugin;
// before the engine is started again (on a host that is going away the
// spool goes with it), every line must already be in S3. After the engine
// is back, nothing may be stored twice.
func TestEphemeralHost(t *testing.T) {
	s := newSuite(t)
	f := newFaults(t, s)
	t.Cleanup(func() { f.restore(t) })
	const containers = 4
	var cs []*container
	var wants [][]byte
	for i := range containers {
		spec := loggen.Spec{Mode: loggen.ModeLines, Lines: 2_000_000, Sleep: true, Report: "/written", Tag: fmt.Sprintf("eph%d", i)}
		c := s.start(t, fmt.Sprintf("eph%d", i), spec)
		cs = append(cs, c)
		want, _ := loggen.Expected(c.spec, c.spec.Count())
		wants = append(wants, want)
	}
	// Wait until every container has written all its lines: loggen writes
	// its report, then sleeps until SIGTERM. The lines may still be in
	// Docker's pipes: the shutdown must carry them through.
	deadline := time.Now().Add(3 * time.Minute)
	for _, c := range cs {
		for {
			_, _, err := run(t.Context(), nil, "docker", "cp", c.name+":"+c.spec.Report, "-")
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not finish writing in time: %v", c.name, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if n := c.reportedLines(t); n != c.spec.Count() {
			t.Fatalf("%s wrote %d lines, want %d", c.name, n, c.spec.Count())
		}
	}
	off := f.logOffset(t)
	id := f.pluginID(t)
	took := f.stopDaemon(t)
	// The engine is down: what is not in S3 now is lost with the host.
	total, lost, dups := 0, 0, 0
	for i, c := range cs {
		_, out, errOut, _ := c.fetchAll(t)
		tl := tally(out, splitLines(wants[i]))
		total += tl.written
		lost += tl.lost + tl.foreign
		dups += tl.dups
		if tl.lost > 0 || tl.foreign > 0 || tl.dups > 0 || len(errOut) > 0 {
			t.Errorf("%s, in S3 with the engine down: %s", c.name, tl)
		}
	}
	stopped := f.grepLog(t, off, "plugin="+id, "s3logs stopped")
	shut := f.grepLog(t, off, "plugin="+id, "shutting down")
	t.Logf("MEASURE ephemeral: containers=%d lines=%d in_s3_at_daemon_exit=%d lost=%d duplicates=%d dockerd_stop=%v plugin_shutdown=%q",
		containers, total, total-lost, lost, dups, took.Round(time.Millisecond), stopped)
	if len(shut) == 0 || len(stopped) == 0 {
		t.Errorf("the plugin did not log a complete shutdown (killed before it finished?):\n%s", strings.Join(f.pluginLines(t, off), "\n"))
	}
	if lost > 0 {
		t.Logf("plugin log during the shutdown:\n%s", strings.Join(f.pluginLines(t, off), "\n"))
	}

	// Back up: the restarted plugin must not upload anything again.
	off = f.logOffset(t)
	f.startDaemon(t)
	f.waitStarted(t, off, f.pluginID(t), pluginRestartTimeout)
	time.Sleep(3 * time.Second) // anything left in the spool would go up now
	for i, c := range cs {
		_, out, _, _ := c.fetchAll(t)
		if tl := tally(out, splitLines(wants[i])); tl.dups > 0 || tl.lost > 0 {
			t.Errorf("%s after the engine restarted: %s", c.name, tl)
		}
	}
}

// TestShutdownBudget: with S3 down when dockerd stops, the plugin spends
// its whole shutdown budget trying to upload and still exits on its own
// before Docker's kill, 10 s after SIGTERM (moby's shutdownPlugin); the
// segments stay in the spool and go up, once, after the next start.
func TestShutdownBudget(t *testing.T) {
	s := newSuite(t)
	f := newFaults(t, s)
	t.Cleanup(func() { f.restore(t) })
	spec := loggen.Spec{Mode: loggen.ModeInterleave, Lines: 100_000, Sleep: true, Report: "/written"}
	c := s.start(t, "budget", spec)
	want, wantErr := loggen.Expected(c.spec, c.spec.Count())
	deadline := time.Now().Add(time.Minute)
	for {
		if _, _, err := run(t.Context(), nil, "docker", "cp", c.name+":"+spec.Report, "-"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container did not finish writing in time")
		}
		time.Sleep(200 * time.Millisecond)
	}
	cid := c.id(t)
	f.stopMinIO(t)
	off := f.logOffset(t)
	id := f.pluginID(t)
	took := f.stopDaemon(t)
	shut := f.grepLog(t, off, "plugin="+id, "shutting down")
	stopped := f.grepLog(t, off, "plugin="+id, "s3logs stopped")
	t.Logf("MEASURE shutdown-budget: dockerd_stop=%v plugin_stopped=%q", took.Round(time.Millisecond), stopped)
	if len(shut) == 0 || len(stopped) == 0 {
		t.Fatalf("the plugin did not finish its shutdown before Docker killed it:\n%s", strings.Join(f.pluginLines(t, off), "\n"))
	}
	if sealed, partial := f.spoolFiles(t, cid); len(sealed) == 0 || len(partial) != 0 {
		t.Errorf("with S3 down the container's segments should wait sealed in the spool: sealed %q, in progress %q", sealed, partial)
	}
	f.startMinIO(t)
	back := time.Now()
	f.startDaemon(t)
	c.waitContent(t, back, back.Add(slowDeadline), want, wantErr)
}
