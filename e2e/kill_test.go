package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
)

// TestKillUnderLoad kills the plugin with SIGKILL three times while a
// container logs at full speed, so that Docker's pipe always holds a backlog
// and every kill lands in the middle of reading it, and checks every line in
// S3: the bound is the frames of one FIFO read (64 KiB) lost per
// kill and no duplicate; the plugin aims at none lost. It runs for short
// lines, ~1 KiB lines, and 100 KiB lines that Docker splits into 16 KiB
// pieces, so that kills also land inside a partial line. The container is
// stopped after the last kill and the generator reports how many lines it
// wrote, which fixes the expected output exactly. (It used to run for a
// fixed 6 to 7 s, which a slow plugin restart on a loaded machine could
// outlast: a failure with nothing wrong. loadCap only bounds a run whose
// test died.)
func TestKillUnderLoad(t *testing.T) {
	s := newSuite(t)
	f := newFaults(t, s)
	const loadCap = 5 * time.Minute
	shapes := []struct {
		name string
		spec loggen.Spec
	}{
		{"short", loggen.Spec{Mode: loggen.ModeLines, Lines: 1_000_000_000, Duration: loadCap}},
		{"1k", loggen.Spec{Mode: loggen.ModeBulk, Size: 1024, Lines: 100_000_000, Duration: loadCap}},
		{"100k", loggen.Spec{Mode: loggen.ModeBig, Size: 100 << 10, Lines: 10_000_000, Duration: loadCap}},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			t.Cleanup(func() { f.restore(t) })
			spec := sh.spec
			spec.Report = "/written"
			const kills = 3
			c := s.start(t, "kill"+sh.name, spec)
			cid := c.id(t)
			id := f.pluginID(t)
			time.Sleep(time.Second) // a backlog builds in the pipe
			for i := 1; i <= kills; i++ {
				if !c.running(t) {
					t.Fatalf("kill %d: the container exited while logging at full speed", i)
				}
				_, _, _, ready := f.killPlugin(t, id, cid)
				t.Logf("MEASURE kill-load %s: kill=%d reattached_after=%v", sh.name, i, ready.Round(time.Millisecond))
				time.Sleep(1200 * time.Millisecond) // at full speed again, before the next kill or the stop
			}
			c.stop(t)
			n := c.reportedLines(t)
			f.waitSpoolEmpty(t, slowDeadline, cid)
			objs, out, errOut, recs := c.fetchAll(t)
			want, _ := loggen.Expected(c.spec, n)
			lines := splitLines(want)
			tl := tally(out, lines)
			// One FIFO read is at most 64 KiB of frames: the line without
			// its newline, a 4-byte length and about 40 bytes of protobuf
			// fields around it (16 KiB pieces for long lines).
			frame := min(len(lines[0])-1, 16<<10) + 44
			perKill := (64<<10+frame-1)/frame + 1
			if len(lines[0]) > 16<<10 {
				perKill = (64<<10)/(len(lines[0])) + 2 // a read spans at most this many long lines
			}
			// How much each kill left in the stream's journal, not yet
			// stored: the backlog the restarted plugin resumed.
			resumed := f.grepLog(t, f.logStart, "plugin="+id, "container="+cid[:12], "resuming the stream's journal")
			var pending []string
			for _, l := range resumed {
				if _, v, ok := strings.Cut(l, "pending_bytes="); ok {
					pending = append(pending, strings.Trim(strings.Fields(v)[0], `"\`))
				}
			}
			t.Logf("MEASURE kill-load %s: kills=%d %s records=%d objects=%d bytes_per_line=%d stderr_bytes=%d bound_per_kill=%d lines journal_pending_at_restart=%v",
				sh.name, kills, tl, recs, len(objs), len(lines[0]), len(errOut), perKill, pending)
			if tl.dups > 0 || tl.outOfOrder > 0 || len(errOut) > 0 {
				t.Errorf("lines stored twice or out of order: %s", tl)
			}
			if tl.lost+tl.foreign > kills*perKill {
				t.Errorf("%d lines lost and %d damaged over %d kills, more than one FIFO read (%d lines) per kill", tl.lost, tl.foreign, kills, perKill)
			}
			if tl.lost > 0 || tl.foreign > 0 {
				t.Logf("NOTE: lines lost %d, damaged %d (goal 0); plugin log:\n%s", tl.lost, tl.foreign,
					strings.Join(f.grepLog(t, f.logStart, "plugin="+id, "container="+cid[:12]), "\n"))
			}
			if q := f.quarantined(t); len(q) > 0 {
				t.Errorf("files quarantined after the kills: %q", q)
			}
		})
	}
}
