package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
)

// The fault tests of the issue "No line lost, no container blocked": one
// test per fault, injected into the real engine, plugin and MinIO. Each
// runs on its own suite and the fault harness (newFaultCase in
// faults_harness_test.go), which restores dockerd, MinIO and the plugin's
// settings when the test ends, even on failure, and then checks that the
// spool drained and that no secret leaked. They disturb the shared engine,
// so none of them runs in parallel. `-run '^TestFault'` runs them all.
// Measured numbers are logged as lines starting with "MEASURE <case>:".

// TestFaultPluginKill kills the plugin with SIGKILL three times while a
// container logs 1,000 lines a second: Docker restarts it, the new process
// re-attaches to the container's FIFO, and S3 ends up with every line once,
// in order, at most one FIFO read lost per kill.
func TestFaultPluginKill(t *testing.T) {
	s, f := newFaultCase(t)
	const kills = 3
	spec := loggen.Spec{Mode: loggen.ModeLines, Lines: 200_000, Rate: 1000, Report: "/written"}
	c := s.start(t, "kill", spec)
	cid := c.id(t)
	id := f.pluginID(t)
	time.Sleep(2 * time.Second)
	for i := 1; i <= kills; i++ {
		pid, newPID, respawn, ready := f.killPlugin(t, id, cid)
		t.Logf("MEASURE kill: kill=%d old_pid=%d new_pid=%d respawn=%v reattached=%v",
			i, pid, newPID, respawn.Round(time.Millisecond), ready.Round(time.Millisecond))
		time.Sleep(2 * time.Second) // let it log between kills
	}
	if !c.running(t) {
		t.Fatal("container stopped during the kills")
	}
	c.stop(t)
	n := c.reportedLines(t)
	f.waitSpoolEmpty(t, slowDeadline, cid)
	_, out, errOut, _ := c.fetchAll(t)
	want, _ := loggen.Expected(c.spec, n)
	lines := splitLines(want)
	tl := tally(out, lines)
	// One FIFO read is at most readBufSize (64 KiB) of frames: a 4-byte
	// length, then source (8 bytes), time_nano (10) and the line's tag and
	// length (2) around the line without its newline.
	frame := len(lines[0]) - 1 + 4 + 8 + 10 + 2
	batch := (64<<10 + frame - 1) / frame
	t.Logf("MEASURE kill: kills=%d %s stderr_bytes=%d read_batch_bound=%d lines", kills, tl, len(errOut), batch)
	if tl.dups > 0 || tl.foreign > 0 || tl.outOfOrder > 0 || len(errOut) > 0 {
		t.Errorf("lines stored twice, foreign or out of order: %s", tl)
	}
	if tl.lost > kills*batch {
		t.Errorf("%d lines lost over %d kills, more than one FIFO read (%d lines) per kill", tl.lost, kills, batch)
	}
	if tl.lost > 0 || tl.dups > 0 {
		t.Logf("plugin log during the case:\n%s", strings.Join(f.grepLog(t, f.logStart, "plugin="), "\n"))
	}
	if q := f.quarantined(t); len(q) > 0 {
		t.Errorf("files quarantined after the kills: %q", q)
	}
}

// TestFaultS3Outage stops MinIO for 60 s while containers log 2,000,000
// lines each at full speed, one after the other: the containers do not wait
// for S3, their segments wait sealed in the spool, and every line reaches
// S3 once MinIO is back. Runs with S3 up before and after are the baseline.
func TestFaultS3Outage(t *testing.T) {
	s, f := newFaultCase(t)
	const outage = 60 * time.Second
	spec := loggen.Spec{Mode: loggen.ModeLines, Lines: 2_000_000, Tag: "o"}
	want, _ := loggen.Expected(spec, spec.Count())
	bucket := s.bucketName("outage")
	s.createBucket(t, bucket)
	// timed runs one container at full speed and returns the time from
	// docker run -d to docker wait. cache-disabled=true leaves the plugin
	// alone on the daemon's side, so its slowdown shows fully.
	timed := func(tag string) (*container, string, time.Duration) {
		c := &container{s: s, name: s.containerName(tag), bucket: bucket, prefix: tag + "/", spec: spec}
		time.Sleep(2 * time.Second) // let the previous run's after-work settle
		begin := time.Now()
		c.run(t, "prefix="+c.prefix, "cache-disabled=true")
		c.wait(t)
		return c, c.id(t), time.Since(begin)
	}
	// verify compares the container's objects with want and returns the
	// lines lost and duplicated.
	verify := func(c *container) (lost, dups int) {
		t.Helper()
		_, out, errOut, recs := c.fetchAll(t)
		if bytes.Equal(out, want) && len(errOut) == 0 && recs == spec.Count() {
			return 0, 0
		}
		tl := tally(out, splitLines(want))
		t.Errorf("%s: %d records; %s; stderr %d bytes", c.name, recs, tl, len(errOut))
		return tl.lost, tl.dups
	}
	var up, down []time.Duration
	for i := 1; i <= 2; i++ {
		c, cid, d := timed(fmt.Sprintf("oup%d", i))
		up = append(up, d)
		f.waitSpoolEmpty(t, slowDeadline, cid)
		verify(c)
	}

	f.stopMinIO(t)
	stopped := time.Now()
	var downs []*container
	var ids []string
	// Five runs fill the 60 s outage; a container that waited for S3
	// would not finish before MinIO is back, so docker wait would fail.
	for i := 1; i <= 5; i++ {
		c, cid, d := timed(fmt.Sprintf("odown%d", i))
		down = append(down, d)
		downs, ids = append(downs, c), append(ids, cid)
	}
	// A stream seals its segment once it has stored what its journal
	// still held at the container's exit (the last burst, left there
	// while the container wrote it), shortly after docker wait returned.
	sealed, partial := f.spoolFiles(t, ids...)
	for deadline := time.Now().Add(slowDeadline); len(sealed) < len(downs) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		sealed, partial = f.spoolFiles(t, ids...)
	}
	t.Logf("MEASURE outage: spooled_during_outage sealed=%d partial=%d", len(sealed), len(partial))
	if len(sealed) < len(downs) {
		t.Errorf("%d sealed segments in the spool for %d containers that ran while S3 was down", len(sealed), len(downs))
	}
	if rest := time.Until(stopped.Add(outage)); rest > 0 {
		time.Sleep(rest)
	}
	f.startMinIO(t)
	catchUp := f.waitSpoolEmpty(t, f.backoff+slowDeadline, ids...)
	var lost, dups int
	for _, c := range downs {
		l, d := verify(c)
		lost, dups = lost+l, dups+d
	}
	for i := 3; i <= 4; i++ {
		c, cid, d := timed(fmt.Sprintf("oup%d", i))
		up = append(up, d)
		f.waitSpoolEmpty(t, slowDeadline, cid)
		verify(c)
	}

	// The verdict is a bound that tells the two kinds of container apart,
	// not a budget. On this 2-core machine single runs vary by 10 to 20%
	// from interference (dockerd, containerd and the test share the cores;
	// fastest-run slowdowns from -11% to +19% were seen with nothing
	// wrong), so it compares the fastest run of each side; a container that
	// waited for S3 would be held for the rest of the 60 s outage, several
	// times its 6 to 10 s run (one held until MinIO is back fails docker
	// wait above). The precise slowdown, against the 10%, is
	// measured by `make bench` (its outage part), from pairs of runs.
	const bound = 1.5
	ratio := float64(slices.Min(down)) / float64(slices.Min(up))
	medRatio := float64(median(down)) / float64(median(up))
	t.Logf("MEASURE outage: lines=%d up=%v down=%v fastest_up=%v fastest_down=%v ratio=%.3f median_ratio=%.3f outage=%v catchup=%v lost=%d duplicates=%d",
		spec.Count(), roundAll(up), roundAll(down), slices.Min(up).Round(time.Millisecond), slices.Min(down).Round(time.Millisecond),
		ratio, medRatio, outage, catchUp.Round(time.Millisecond), lost, dups)
	if ratio > bound {
		t.Errorf("containers ran %.2fx as long with S3 down (fastest run %v) as with S3 up (fastest run %v); bound %.1fx",
			ratio, slices.Min(down), slices.Min(up), bound)
	}
}

// TestFaultDaemonRestart stops and starts dockerd while two containers log
// (restart policy no, so the shutdown stops them): the plugin comes back
// enabled with the suite's settings, and S3 holds exactly what each
// container wrote before it was stopped.
func TestFaultDaemonRestart(t *testing.T) {
	s, f := newFaultCase(t)
	cs := []*container{
		s.start(t, "dmn1", loggen.Spec{Mode: loggen.ModeLines, Lines: 1_000_000, Rate: 1000, Report: "/written"}),
		s.start(t, "dmn2", loggen.Spec{Mode: loggen.ModeInterleave, Lines: 1_000_000, Rate: 500, Report: "/written"}),
	}
	time.Sleep(3 * time.Second)
	off := f.logOffset(t)
	oldPID := f.daemon.pid
	stopTook := f.stopDaemon(t)
	startTook := f.startDaemon(t)
	back := time.Now()
	p := f.inspectPlugin(t)
	if !p.Has(f.settings()) {
		t.Fatalf("after the daemon restart the plugin is not enabled with the suite's settings: enabled=%v env=%q mounts=%v",
			p.Enabled, p.Settings.Env, p.Settings.Mounts)
	}
	f.waitStarted(t, off, p.ID, pluginRestartTimeout)
	for _, c := range cs {
		if c.running(t) {
			t.Fatalf("%s still running after the daemon restart (restart policy no)", c.name)
		}
		if code := strings.TrimSpace(string(docker(t, "inspect", "-f", "{{.State.ExitCode}}", c.name))); code != "0" {
			t.Fatalf("%s exited with %s at the daemon's shutdown", c.name, code)
		}
		n := c.reportedLines(t)
		wantOut, wantErr := loggen.Expected(c.spec, n)
		objs, took := c.waitContent(t, back, back.Add(slowDeadline), wantOut, wantErr)
		t.Logf("MEASURE daemon: container=%s lines_written=%d lost=0 duplicates=0 objects=%d complete_after_daemon_up=%v",
			c.name, n, len(objs), took.Round(time.Millisecond))
	}
	t.Logf("MEASURE daemon: dockerd pid %d -> %d, stop=%v start=%v",
		oldPID, f.daemon.pid, stopTook.Round(time.Millisecond), startTook.Round(time.Millisecond))
}

// TestFaultPluginUpgrade reinstalls the plugin with `make plugin` while S3
// is down, so segments stay in the spool across the upgrade: the stopped
// container's sealed segment and the running one's segment in progress are
// both uploaded, whole, by the new plugin. A container that keeps logging
// through the upgrade is measured, not judged: its FIFO stays with the
// removed plugin.
func TestFaultPluginUpgrade(t *testing.T) {
	s, f := newFaultCase(t)
	done := &container{s: s, name: s.containerName("upgdone"), bucket: s.bucketName("upgdone"),
		spec: loggen.Spec{Mode: loggen.ModeInterleave, Lines: 3000}}
	live := &container{s: s, name: s.containerName("upglive"), bucket: s.bucketName("upglive"),
		spec: loggen.Spec{Mode: loggen.ModeLines, Lines: 2000, Rate: 1000, Sleep: true}}
	through := &container{s: s, name: s.containerName("upgthrough"), bucket: s.bucketName("upgthrough"),
		spec: loggen.Spec{Mode: loggen.ModeLines, Lines: 1_000_000, Rate: 200, Report: "/written"}}
	s.createBucket(t, done.bucket)
	s.createBucket(t, live.bucket)
	s.createBucket(t, through.bucket)
	f.stopMinIO(t)
	done.run(t)
	done.wait(t)
	live.run(t)
	through.run(t)
	wantDone, wantDoneErr := loggen.Expected(done.spec, done.spec.Count())
	wantLive, _ := loggen.Expected(live.spec, live.spec.Count())
	live.waitDockerLogs(t, wantLive) // everything written; the segment is open
	ids := []string{done.id(t), live.id(t)}
	sealed, partial := f.spoolFiles(t, ids[0])
	sealedL, partialL := f.spoolFiles(t, ids[1])
	if len(sealed) == 0 || len(partialL) == 0 {
		t.Fatalf("before the upgrade the spool should hold the stopped container's sealed segment and the running one's segment in progress: %q %q / %q %q",
			sealed, partial, sealedL, partialL)
	}
	oldID := f.pluginID(t)
	off := f.logOffset(t)
	took := f.makePlugin(t)
	newID := f.pluginID(t)
	// make plugin leaves the new plugin with the default settings and the
	// suite's spool; give it the suite's settings.
	f.setPlugin(t, f.settings()...)
	f.waitStarted(t, off, newID, pluginRestartTimeout)
	f.startMinIO(t)
	back := time.Now()
	objs1, t1 := done.waitContent(t, back, back.Add(slowDeadline), wantDone, wantDoneErr)
	objs2, t2 := live.waitContent(t, back, back.Add(slowDeadline), wantLive, nil)
	t.Logf("MEASURE upgrade: make_plugin=%v plugin %s -> %s, stopped_container objects=%d complete=%v, running_container lines=%d objects=%d complete=%v lost=0 duplicates=0",
		took.Round(time.Millisecond), oldID[:12], newID[:12], len(objs1), t1.Round(time.Millisecond), live.spec.Count(), len(objs2), t2.Round(time.Millisecond))
	if !live.running(t) {
		t.Fatal("the running container stopped during the upgrade")
	}
	// Not part of the acceptance, measured for the record: a
	// container that keeps logging after the upgrade. Its FIFO lives in the
	// removed plugin's rootfs, out of the new plugin's reach; once the pipe
	// is full Docker blocks on it. If its stop hangs, the orphaned pipe is
	// drained so the engine is usable again.
	time.Sleep(3 * time.Second)
	begin := time.Now()
	liveDone, throughDone := stopAsync(live.name), stopAsync(through.name)
	var liveTook time.Duration
	select {
	case err := <-liveDone:
		liveTook = time.Since(begin)
		if err != nil {
			t.Errorf("docker stop of the idle container: %v", err)
		}
	case <-time.After(25 * time.Second):
		n, err := f.drainOrphanFIFOs(t, oldID, liveDone)
		liveTook = time.Since(begin)
		t.Logf("NOTE: docker stop of the idle container hung; %d bytes drained from the old plugin's FIFOs (err %v)", n, err)
	}
	var throughTook time.Duration
	hung, drained := false, int64(0)
	select {
	case err := <-throughDone:
		throughTook = time.Since(begin)
		if err != nil {
			t.Errorf("docker stop of the container logging through the upgrade: %v", err)
		}
	case <-time.After(time.Until(begin.Add(25 * time.Second))):
		hung = true
		var err error
		drained, err = f.drainOrphanFIFOs(t, oldID, throughDone)
		throughTook = time.Since(begin)
		if err != nil {
			t.Errorf("docker stop of the container logging through the upgrade, after draining its FIFO: %v", err)
		}
	}
	tid := through.id(t)
	f.waitSpoolEmpty(t, slowDeadline, tid)
	_, out, _, _ := through.fetchAll(t)
	code := strings.TrimSpace(string(docker(t, "inspect", "-f", "{{.State.ExitCode}}", through.name)))
	report := "unavailable (exit status " + code + ")"
	if code == "0" {
		n := through.reportedLines(t)
		want, _ := loggen.Expected(through.spec, n)
		report = tally(out, splitLines(want)).String()
	}
	t.Logf("MEASURE upgrade: idle container started before the upgrade: docker stop took %v", liveTook.Round(time.Millisecond))
	t.Logf("MEASURE upgrade: container logging through the upgrade: %s; docker stop hung=%v took=%v (drained %d bytes from the removed plugin's FIFO)",
		report, hung, throughTook.Round(time.Millisecond), drained)
}

// spoolFullSpec is the workload of the spool-full tests: bulk lines
// compress to about 75%, so 60,000 x 200 bytes is ~9 MB of segments, far
// above their 1 MiB limit. Its segments are 64 KiB (spoolFullOpts).
func spoolFullSpec() loggen.Spec {
	return loggen.Spec{Mode: loggen.ModeBulk, Lines: 60_000, Size: 200}
}

// spoolFullOpts are the log-opts of the spool-full tests' containers.
const spoolFullOpts = "segment-size=64k"

// TestFaultSpoolLimitDropOldest: with S3 down and SPOOL_LIMIT=1m under
// policy drop-oldest, the container does not block, the spool stays near
// its limit, and S3 ends up with the newest lines, every missing one
// accounted for in the plugin's drop lines.
func TestFaultSpoolLimitDropOldest(t *testing.T) {
	s, f := newFaultCase(t)
	const limit = 1 << 20
	f.setPlugin(t, f.with("SPOOL_LIMIT=1m", "SPOOL_POLICY=drop-oldest")...)
	c := &container{s: s, name: s.containerName("fulldrop"), bucket: s.bucketName("fulldrop"), spec: spoolFullSpec()}
	s.createBucket(t, c.bucket)
	f.stopMinIO(t)
	off := f.logOffset(t)
	stop := sampleSpoolPeak(filepath.Join(s.spool, "segments"))
	begin := time.Now()
	c.run(t, spoolFullOpts)
	c.wait(t)
	took := time.Since(begin)
	time.Sleep(2 * time.Second) // the janitor runs every second
	peak := stop()
	cid := c.id(t)
	t.Logf("MEASURE spool-full drop-oldest: run_to_exit=%v spool_peak_bytes=%d limit=%d", took.Round(time.Millisecond), peak, limit)
	if took > 30*time.Second {
		t.Errorf("container took %v with a full spool under drop-oldest: it must not block", took)
	}
	f.startMinIO(t)
	f.checkDropAccounting(t, c, cid, off, "drop-oldest", true)
}

// TestFaultSpoolLimitBlock: with S3 down and SPOOL_LIMIT=1m under policy
// block, the container is held (it does not finish) and the plugin says
// so; once S3 is back it finishes and S3 holds every line.
func TestFaultSpoolLimitBlock(t *testing.T) {
	s, f := newFaultCase(t)
	f.setPlugin(t, f.with("SPOOL_LIMIT=1m", "SPOOL_POLICY=block")...)
	c := &container{s: s, name: s.containerName("fullblock"), bucket: s.bucketName("fullblock"), spec: spoolFullSpec()}
	s.createBucket(t, c.bucket)
	f.stopMinIO(t)
	off := f.logOffset(t)
	c.run(t, spoolFullOpts)
	time.Sleep(8 * time.Second)
	if !c.running(t) {
		t.Fatal("container finished although the spool was full under policy block with S3 down")
	}
	f.waitLog(t, off, 5*time.Second, "spool full: blocking log streams")
	f.startMinIO(t)
	back := time.Now()
	exited := c.wait(t)
	wantOut, _ := loggen.Expected(c.spec, c.spec.Count())
	objs, took := c.waitContent(t, exited, exited.Add(slowDeadline), wantOut, nil)
	t.Logf("MEASURE spool-full block: blocked_while_s3_down=yes exit_after_s3_up=%v objects=%d complete_after_exit=%v lost=0 duplicates=0",
		exited.Sub(back).Round(time.Millisecond), len(objs), took.Round(time.Millisecond))
}

// TestFaultDiskFull puts the spool on a 40 MiB tmpfs that something else
// fills up to 6 MiB free: the spool counts as full (below 16 MiB free), and
// the container writes faster than the janitor (once a second) drops
// segments, so the disk itself fills (ENOSPC). The plugin does not crash,
// the container does not block, and every missing line is accounted for.
// Then the other files go away and the spool must recover.
func TestFaultDiskFull(t *testing.T) {
	s, f := newFaultCase(t)
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, _, err := run(context.Background(), nil, "mount", "-t", "tmpfs", "-o", "size=40m,mode=0700", "tmpfs", dir); err != nil {
		t.Fatalf("mount a tmpfs for the spool: %v %s", err, out)
	}
	t.Cleanup(func() {
		if _, _, err := run(context.Background(), nil, "umount", dir); err != nil {
			t.Errorf("umount %s: %v", dir, err)
		}
	})
	t.Cleanup(func() { f.restore(t) }) // runs first: the plugin leaves the tmpfs
	filler := filepath.Join(dir, "filler")
	fill, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fallocate(int(fill.Fd()), 0, 0, int64(st.Bavail)*st.Bsize-6<<20); err != nil {
		t.Fatalf("fill the tmpfs: %v", err)
	}
	fill.Close()
	f.setPlugin(t, f.with("SPOOL_LIMIT=1g", "SPOOL_POLICY=drop-oldest", "spool.source="+dir)...)
	id := f.pluginID(t)
	pid := pluginPID(id)
	big := spoolFullSpec()
	big.Lines = 150_000 // ~22 MB of segments: more than the disk
	c := &container{s: s, name: s.containerName("fulldisk"), bucket: s.bucketName("fulldisk"), spec: big}
	s.createBucket(t, c.bucket)
	f.stopMinIO(t)
	off := f.logOffset(t)
	begin := time.Now()
	c.run(t, spoolFullOpts)
	c.wait(t)
	took := time.Since(begin)
	time.Sleep(2 * time.Second)
	if now := pluginPID(id); now != pid {
		t.Errorf("plugin process changed from %d to %d while the disk was full (crashed?)", pid, now)
	}
	t.Logf("MEASURE spool-full disk: run_to_exit=%v", took.Round(time.Millisecond))
	if took > 60*time.Second {
		t.Errorf("container took %v with a full disk under drop-oldest: it must not block", took)
	}
	if err := os.Remove(filler); err != nil { // the disk has room again
		t.Fatal(err)
	}
	f.startMinIO(t)
	cid := c.id(t)
	// The spool of this case is the tmpfs, not the suite's.
	saved := s.spool
	s.spool = dir
	defer func() { s.spool = saved }()
	// While the disk is full even the last segment may be dropped.
	f.checkDropAccounting(t, c, cid, off, "disk", false)
}

// TestFaultBucketMissing: a container logging to a bucket that does not
// exist runs normally; the plugin keeps its segment, logs one error per
// backoff step naming bucket, key and code NoSuchBucket, and uploads it
// all once the bucket is created.
func TestFaultBucketMissing(t *testing.T) {
	s, f := newFaultCase(t)
	c := &container{s: s, name: s.containerName("nobucket"), bucket: s.bucketName("nobucket"),
		spec: loggen.Spec{Mode: loggen.ModeLines, Lines: 500}}
	off := f.logOffset(t)
	c.run(t) // must succeed: logging goes to disk
	c.wait(t)
	cid := c.id(t)
	line := f.waitLog(t, off, 15*time.Second, "uploader: upload", "bucket="+c.bucket+" ", "key=", "_"+cid[:12]+"_", "code=NoSuchBucket")
	t.Logf("error logged: %s", line)
	if sealed, _ := f.spoolFiles(t, cid); len(sealed) == 0 {
		t.Error("no sealed segment in the spool while the bucket is missing")
	}
	time.Sleep(2 * f.backoff) // a few backoff steps
	s.createBucket(t, c.bucket)
	created := time.Now()
	wantOut, _ := loggen.Expected(c.spec, c.spec.Count())
	objs, took := c.waitContent(t, created, created.Add(f.backoff+slowDeadline), wantOut, nil)
	errs := f.grepLog(t, off, "uploader: upload", "bucket="+c.bucket+" ")
	steps := int(time.Since(line0Time(t, line)) / f.backoff)
	t.Logf("MEASURE bucket: error_lines=%d backoff_steps=%d uploaded_after_bucket_created=%v objects=%d lost=0 duplicates=0",
		len(errs), steps, took.Round(time.Millisecond), len(objs))
	if len(errs) > steps+2 {
		t.Errorf("%d error lines for bucket %s over %d backoff steps of %v: want one per step", len(errs), c.bucket, steps, f.backoff)
	}
}

// TestFaultWrongCredentials: with a wrong secret key the plugin logs
// SignatureDoesNotMatch and keeps the segments; once the credentials are
// fixed (disable, set, enable) everything is uploaded. Neither key may
// appear in what the plugin logged or stored.
func TestFaultWrongCredentials(t *testing.T) {
	s, f := newFaultCase(t)
	wrong := randomMarker(t, "wrongsecret")
	f.addSecret("wrong AWS secret access key", wrong)
	f.setPlugin(t, f.with("AWS_SECRET_ACCESS_KEY="+wrong)...)
	off := f.logOffset(t)
	c := s.start(t, "badcreds", loggen.Spec{Mode: loggen.ModeInterleave, Lines: 600})
	c.wait(t)
	cid := c.id(t)
	line := f.waitLog(t, off, 15*time.Second, "uploader: upload", "bucket="+c.bucket+" ", "key=", "_"+cid[:12]+"_", "code=SignatureDoesNotMatch")
	t.Logf("error logged: %s", line)
	f.setPlugin(t, f.settings()...)
	fixed := time.Now()
	wantOut, wantErr := loggen.Expected(c.spec, c.spec.Count())
	objs, took := c.waitContent(t, fixed, fixed.Add(slowDeadline), wantOut, wantErr)
	t.Logf("MEASURE credentials: error_lines=%d uploaded_after_fix=%v objects=%d lost=0 duplicates=0",
		len(f.grepLog(t, off, "uploader: upload", "bucket="+c.bucket+" ")), took.Round(time.Millisecond), len(objs))
}

// TestFaultSecrets runs a container with a secret in its environment and
// env=OTHER: the selected variable reaches the records' attrs, and the
// secret appears nowhere, neither in the spool while the container runs
// nor, after it stopped, in the spool, any object or the plugin's log
// (LOG_LEVEL=debug); the harness checks the latter for every fault test.
func TestFaultSecrets(t *testing.T) {
	s, f := newFaultCase(t)
	marker := randomMarker(t, "containersecret")
	visible := randomMarker(t, "visible")
	f.addSecret("container env SECRET_TOKEN", marker)
	spec := loggen.Spec{Mode: loggen.ModeLines, Lines: 200, Sleep: true}
	c := &container{s: s, name: s.containerName("secret"), bucket: s.bucketName("secret"), spec: spec}
	s.createBucket(t, c.bucket)
	c.spec.Tag = c.name
	t.Cleanup(func() { _, _, _ = run(context.Background(), nil, "docker", "rm", "-f", c.name) })
	args := []string{"run", "-d", "--name", c.name, "--label", labelKey + "=" + s.runID, "--network", "none",
		"-e", "SECRET_TOKEN=" + marker, "-e", "OTHER=" + visible,
		"--log-driver", s.plugin, "--log-opt", "endpoint=" + s.minio.Endpoint, "--log-opt", "bucket=" + c.bucket,
		"--log-opt", "env=OTHER", s.image}
	docker(t, append(args, c.spec.Args()...)...)
	wantOut, _ := loggen.Expected(c.spec, c.spec.Count())
	c.waitDockerLogs(t, wantOut)
	if !strings.Contains(string(docker(t, "inspect", "-f", "{{.Config.Env}}", c.name)), marker) {
		t.Fatal("the container does not have SECRET_TOKEN in its environment")
	}
	// While it runs: its saved stream and open segment are in the spool.
	running, hits := f.spoolSecrets(t)
	stopped := c.stop(t)
	objs, _ := c.waitContent(t, stopped, stopped.Add(exitBound), wantOut, nil)
	after, more := f.spoolSecrets(t)
	t.Logf("MEASURE secrets: container spool_files=%d+%d objects=%d", running, after, len(objs))
	for _, h := range append(hits, more...) {
		t.Errorf("secret leaked: %s", h)
	}
	attrs := []byte(`"attrs":{"OTHER":"` + visible + `"}`)
	attrsSeen := false
	c.eachObject(t, func(_ object, records []byte) { attrsSeen = attrsSeen || bytes.Contains(records, attrs) })
	if !attrsSeen {
		t.Error(`records lack "attrs":{"OTHER":...}: env=OTHER was not applied, so the check proves less`)
	}
}

// sampleSpoolPeak records the largest size of the files under root (the
// quarantine aside) every 20 ms until the returned stop is called, which
// returns it.
func sampleSpoolPeak(root string) (stop func() int64) {
	ch := make(chan int64)
	quit := make(chan struct{})
	go func() {
		var peak int64
		for {
			var n int64
			_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && !strings.Contains(p, "_quarantine") {
					if fi, err := d.Info(); err == nil {
						n += fi.Size()
					}
				}
				return nil
			})
			peak = max(peak, n)
			select {
			case <-quit:
				ch <- peak
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() int64 { close(quit); return <-ch }
}
