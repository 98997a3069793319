package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
)

// TestEphemeralHost is the host that goes away, at its worst moment:
// three containers log at full speed (short lines, ~1 KiB lines, 100 KiB
// lines that Docker splits into 16 KiB pieces) when dockerd gets SIGTERM,
// with S3 up, so the streams' journals hold the burst they yielded to and
// whatever compression fell behind. Docker stops the containers, then the
// plugin; before the engine is started again (on a host that is going away
// the spool goes with it), every line a container wrote must already be in
// S3. After the engine is back, nothing may be stored twice. (It used to
// stop dockerd only after the containers had finished writing, when the
// streams had long caught up.)
func TestEphemeralHost(t *testing.T) {
	s := newSuite(t)
	f := newFaults(t, s)
	t.Cleanup(func() { f.restore(t) })
	const loadCap = 5 * time.Minute // bounds a run whose test died
	specs := []loggen.Spec{
		{Mode: loggen.ModeLines, Lines: 500_000, Sleep: true},
		{Mode: loggen.ModeBulk, Size: 1024, Lines: 100_000_000, Duration: loadCap},
		{Mode: loggen.ModeBig, Size: 100 << 10, Lines: 10_000_000, Duration: loadCap},
	}
	var cs []*container
	for i, spec := range specs {
		spec.Report = "/written"
		spec.Tag = fmt.Sprintf("eph%d", i)
		c := s.start(t, spec.Tag, spec)
		cs = append(cs, c)
		if spec.Sleep {
			c.waitReport(t, 3*time.Minute)
		}
	}
	// Long enough for the journals to fill up to their limit behind a
	// single writer (about 256 MiB at 50-100 MB/s).
	time.Sleep(8 * time.Second)
	for _, c := range cs {
		if !c.running(t) {
			t.Fatalf("%s exited while logging", c.name)
		}
	}
	off := f.logOffset(t)
	id := f.pluginID(t)
	took := f.stopDaemon(t)
	// The engine is down: what is not in S3 now is lost with the host.
	outs := make([][]byte, len(cs))
	for i, c := range cs {
		var errOut []byte
		_, outs[i], errOut, _ = c.fetchAll(t)
		if len(errOut) > 0 {
			t.Errorf("%s: %d bytes on stderr, the generator writes none", c.name, len(errOut))
		}
	}
	pending := f.grepLog(t, off, "plugin="+id, "StopLogging: reading on to EOF")
	stopped := f.grepLog(t, off, "plugin="+id, "s3logs stopped")
	shut := f.grepLog(t, off, "plugin="+id, "shutting down")
	if len(shut) == 0 || len(stopped) == 0 {
		t.Errorf("the plugin did not log a complete shutdown (killed before it finished?):\n%s", strings.Join(f.pluginLines(t, off), "\n"))
	}
	pluginLog := f.pluginLines(t, off)

	// Back up: the containers' reports say exactly which lines they
	// wrote; the restarted plugin must not upload anything again.
	off = f.logOffset(t)
	f.startDaemon(t)
	f.waitStarted(t, off, f.pluginID(t), pluginRestartTimeout)
	total, lost, dups := 0, 0, 0
	var tallies []string
	wants := make([][][]byte, len(cs))
	for i, c := range cs {
		want, _ := loggen.Expected(c.spec, c.reportedLines(t))
		wants[i] = splitLines(want)
		tl := tally(outs[i], wants[i])
		total += tl.written
		lost += tl.lost + tl.foreign
		dups += tl.dups
		tallies = append(tallies, fmt.Sprintf("%s: %s", c.spec.Tag, tl))
		if tl.lost > 0 || tl.foreign > 0 || tl.dups > 0 || tl.outOfOrder > 0 {
			t.Errorf("%s, in S3 with the engine down: %s", c.name, tl)
		}
	}
	// What each stream still had to store when its container stopped.
	var backlog []string
	for _, c := range cs {
		for _, l := range pending {
			if _, v, ok := strings.Cut(l, "journal_pending_bytes="); ok && strings.Contains(l, "name="+c.name+" ") {
				backlog = append(backlog, c.spec.Tag+":"+strings.Trim(strings.Fields(v)[0], `"\`))
			}
		}
	}
	t.Logf("MEASURE ephemeral: containers=%d lines=%d in_s3_at_daemon_exit=%d lost=%d duplicates=%d dockerd_stop=%v journal_pending_at_stop=%v plugin_shutdown=%q",
		len(cs), total, total-lost, lost, dups, took.Round(time.Millisecond), backlog, stopped)
	t.Logf("MEASURE ephemeral: %s", strings.Join(tallies, "; "))
	if lost > 0 {
		t.Logf("plugin log during the shutdown:\n%s", strings.Join(pluginLog, "\n"))
	}
	time.Sleep(3 * time.Second) // anything left in the spool would go up now
	for i, c := range cs {
		_, out, _, _ := c.fetchAll(t)
		if tl := tally(out, wants[i]); tl.dups > 0 || tl.lost > 0 {
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
	c.waitReport(t, time.Minute)
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
