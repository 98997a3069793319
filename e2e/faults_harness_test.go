package e2e

import (
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

// The fault-injection harness. It owns the machine-level state the fault
// tests disturb (MinIO up or down, the plugin process, the plugin's
// settings, dockerd itself) and puts it back after every test, so a failing
// test does not poison the next one. newFaultCase sets up one fault test.
// Its parts: procs_test.go (dockerd, the plugin's process and its log),
// stored_test.go (what reached S3, line by line) and secrets_test.go.

const (
	// faultBackoffMax is the plugin's UPLOAD_BACKOFF_MAX during fault tests:
	// permanent upload errors (missing bucket) are retried this often, so
	// fixing the bucket shows within seconds instead of the default 5 min.
	faultBackoffMax = "3s"
	// daemonTimeout bounds dockerd's shutdown and start-up.
	daemonTimeout = 90 * time.Second
	// pluginRestartTimeout bounds how long dockerd may take to restart a
	// killed plugin.
	pluginRestartTimeout = 30 * time.Second
)

// faults extends the suite with fault injection. Not safe for concurrent
// use: the fault tests run one after the other.
type faults struct {
	*suite
	daemon    daemonProc // dockerd as found at set-up
	logPath   string     // dockerd's log file (its stdout and stderr)
	logStart  int64      // size of that log when the test began
	minioDown bool       // MinIO stopped by the test
	backoff   time.Duration
	// extra are settings the fault tests add to the suite's (configurePlugin).
	extra []string
	// secrets are the values that must appear nowhere the plugin writes,
	// by description (checkNoSecrets).
	secrets map[string]string
}

// newFaultCase sets up one fault test: a suite (MinIO, the generator image,
// the plugin pointed at both) and the fault harness. When t ends, after its
// containers are removed, it restores the engine (restore) and then checks
// that the spool drained and that no secret leaked (checkNoSecrets).
func newFaultCase(t *testing.T) (*suite, *faults) {
	t.Helper()
	s := newSuite(t)
	f := newFaults(t, s)
	t.Cleanup(func() {
		s.checkSpoolDrained(t)
		f.checkNoSecrets(t)
	})
	t.Cleanup(func() { f.restore(t) })
	return s, f
}

// newFaults finds dockerd and its log and applies the fault tests' plugin
// settings (LOG_LEVEL=debug so the secret check sees every message the
// plugin can print, and a short UPLOAD_BACKOFF_MAX), restoring the earlier
// values when t ends.
func newFaults(t *testing.T, s *suite) *faults {
	t.Helper()
	f := &faults{suite: s, secrets: map[string]string{"AWS secret access key": s.minio.SecretKey}}
	d, err := findDaemon()
	if err != nil {
		unavailable(t, "cannot find the dockerd process serving the docker CLI: %v", err)
	}
	f.daemon = d
	logPath, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", d.pid))
	if err != nil {
		unavailable(t, "dockerd's stderr: %v", err)
	}
	if fi, err := os.Stat(logPath); err != nil || !fi.Mode().IsRegular() {
		unavailable(t, "dockerd's stderr is %s, not a log file the plugin's output can be read from (%v)", logPath, err)
	}
	f.logPath = logPath
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	f.logStart = fi.Size()
	t.Logf("dockerd pid %d (%s), log %s", d.pid, strings.Join(d.args, " "), logPath)

	cur := s.inspectPlugin(t)
	if !cur.Declares("UPLOAD_BACKOFF_MAX") {
		t.Fatalf("plugin %s has no UPLOAD_BACKOFF_MAX setting: the missing-bucket case would wait the 5 min permanent-error backoff", s.plugin)
	}
	f.backoff, _ = time.ParseDuration(faultBackoffMax)
	f.extra = []string{"LOG_LEVEL=debug", "UPLOAD_BACKOFF_MAX=" + faultBackoffMax}
	restore := cur.Saved("LOG_LEVEL", "UPLOAD_BACKOFF_MAX", "SPOOL_LIMIT", "SPOOL_POLICY")
	f.setPlugin(t, f.settings()...)
	t.Cleanup(func() {
		f.restore(t)
		if len(restore) > 0 {
			s.setPlugin(t, restore...)
		}
	})
	return f
}

// settings are the plugin settings every fault test starts from: the
// suite's own (configurePlugin) plus f.extra, with the spool limit and policy
// at their defaults.
func (f *faults) settings() []string {
	return append([]string{
		"AWS_ACCESS_KEY_ID=" + f.minio.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + f.minio.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION=" + f.minio.Region,
		"SPOOL_LIMIT=25%",
		"SPOOL_POLICY=drop-oldest",
		"spool.source=" + f.spool,
	}, f.extra...)
}

// pluginID returns the installed plugin's id.
func (f *faults) pluginID(t testing.TB) string { return f.inspectPlugin(t).ID }

// restore brings the engine back to the state every fault test starts
// from: dockerd running, MinIO running, the plugin installed, enabled and
// configured with f.settings(). Tests run it as a cleanup registered before
// their containers', so it runs after they were removed.
func (f *faults) restore(t *testing.T) {
	t.Helper()
	if _, _, err := run(context.Background(), nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		if pidAlive(f.daemon.pid) {
			f.waitDaemon(t)
		} else {
			t.Logf("restore: dockerd is not running; starting it")
			f.startDaemon(t)
		}
	}
	if f.minioDown {
		f.startMinIO(t)
	}
	if _, _, err := run(context.Background(), nil, "docker", "plugin", "inspect", f.plugin); err != nil {
		t.Logf("restore: plugin missing; reinstalling it")
		f.makePlugin(t)
	}
	if !f.inspectPlugin(t).Has(f.settings()) {
		f.setPlugin(t, f.settings()...)
	}
}

// addSecret adds a value that must appear nowhere the plugin writes.
func (f *faults) addSecret(what, value string) { f.secrets[what] = value }

// stopMinIO stops MinIO until startMinIO or restore.
func (f *faults) stopMinIO(t testing.TB) {
	t.Helper()
	f.minioDown = true
	f.minio.Stop()
}

// startMinIO restarts MinIO on the same address with the same data.
func (f *faults) startMinIO(t testing.TB) {
	t.Helper()
	if err := f.minio.Restart(); err != nil {
		t.Fatal(err)
	}
	f.minioDown = false
}

// makePlugin runs `make plugin` from the repository root with the suite's
// plugin name and spool, as an upgrade would, and returns how long it took.
func (f *faults) makePlugin(t testing.TB) time.Duration {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		// The enclosing `make e2e` passes its job server and level down.
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" && k != "MAKEOVERRIDES" {
			env = append(env, kv)
		}
	}
	start := time.Now()
	out, stderr, err := run(context.Background(), env, "make", "-C", "..", "plugin", "PLUGIN="+f.plugin, "SPOOL="+f.spool)
	if err != nil {
		t.Fatalf("make plugin: %v\n%s%s", err, out, stderr)
	}
	return time.Since(start)
}

// killPlugin kills the plugin id with SIGKILL and waits until Docker has
// restarted it and the new process has re-attached to the FIFO of
// container cid. It returns the old and new pids, how long after the kill
// the new process ran (respawn) and logged that it was ready (ready).
func (f *faults) killPlugin(t testing.TB, id, cid string) (oldPID, newPID int, respawn, ready time.Duration) {
	t.Helper()
	oldPID = pluginPID(id)
	if oldPID == 0 {
		t.Fatalf("no plugin process for plugin %s", id)
	}
	off := f.logOffset(t)
	if err := syscall.Kill(oldPID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", oldPID, err)
	}
	killed := time.Now()
	newPID = f.waitPluginPID(t, id, oldPID, pluginRestartTimeout)
	respawn = time.Since(killed)
	f.waitStarted(t, off, id, pluginRestartTimeout)
	ready = time.Since(killed)
	if len(f.grepLog(t, off, "plugin="+id, "re-attached to FIFO", "container="+cid[:12])) == 0 {
		t.Fatalf("the restarted plugin did not re-attach to the container's FIFO; plugin log:\n%s",
			strings.Join(f.pluginLines(t, off), "\n"))
	}
	return oldPID, newPID, respawn, ready
}

// spoolFiles lists the segment files (sealed or in progress, not metadata
// or sequence files) in the spool, for the container ids given or for all
// when none are.
func (f *faults) spoolFiles(t testing.TB, ids ...string) (sealed, partial []string) {
	t.Helper()
	root := filepath.Join(f.spool, "segments")
	err := walkSpool(root, func(rel string, d fs.DirEntry) error {
		if d.IsDir() {
			return nil
		}
		if len(ids) > 0 && !slices.Contains(ids, filepath.Dir(rel)) {
			return nil
		}
		switch {
		case strings.HasSuffix(rel, ".jsonl.zst"):
			sealed = append(sealed, rel)
		case strings.HasSuffix(rel, ".jsonl.zst.partial"):
			partial = append(partial, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk spool: %v", err)
	}
	return sealed, partial
}

// waitSpoolEmpty waits until the spool holds no segment of the given
// containers and returns how long that took.
func (f *faults) waitSpoolEmpty(t testing.TB, timeout time.Duration, ids ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		sealed, partial := f.spoolFiles(t, ids...)
		if len(sealed)+len(partial) == 0 {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("spool still holds %d sealed and %d in-progress segments %v later: %q %q",
				len(sealed), len(partial), timeout, sealed, partial)
		}
		time.Sleep(pollInterval)
	}
}

// quarantined lists files under segments/_quarantine.
func (f *faults) quarantined(t testing.TB) []string {
	t.Helper()
	var q []string
	root := filepath.Join(f.spool, "segments", "_quarantine")
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			q = append(q, p)
		}
		return nil
	})
	return q
}

// checkDropAccounting checks what reached S3 from c (container id cid)
// against the drops the plugin logged since offset from: nothing
// duplicated, reordered or altered, the limit acted (and, unless
// keepsNewest, the disk filled), the newest line kept when keepsNewest, and
// exactly the logged records missing.
func (f *faults) checkDropAccounting(t *testing.T, c *container, cid string, from int64, what string, keepsNewest bool) {
	t.Helper()
	f.waitSpoolEmpty(t, slowDeadline, cid)
	_, out, _, _ := c.fetchAll(t)
	want, _ := loggen.Expected(c.spec, c.spec.Count())
	lines := splitLines(want)
	tl := tally(out, lines)
	// The plugin logs a drop before the segment it concerns is uploaded,
	// but dockerd relays its log lines asynchronously: look again for a
	// few seconds while the logged drops do not yet account for the loss.
	var dropLines []string
	var segDropped, appendDropped, enospc int
	for deadline := time.Now().Add(10 * time.Second); ; {
		dropLines = f.grepLog(t, from, "spool full: dropped ", "container="+cid) // one line per segment, then one per container and visit
		segDropped = logInts(dropLines, "records")
		appendDropped = logInts(f.grepLog(t, from, "log records not stored", "container="+cid[:12]), "dropped")
		appendDropped += logInts(f.grepLog(t, from, "records lost to a write error", "container="+cid), "records")
		enospc = len(f.grepLog(t, from, "no space left on device"))
		if tl.lost <= segDropped+appendDropped || time.Now().After(deadline) {
			break
		}
		time.Sleep(pollInterval)
	}
	t.Logf("MEASURE spool-full %s: %s dropped_segments=%d dropped_segment_records=%d dropped_on_write_error=%d enospc_log_lines=%d",
		what, tl, len(dropLines), segDropped, appendDropped, enospc)
	if tl.dups > 0 || tl.foreign > 0 || tl.outOfOrder > 0 {
		t.Errorf("stored lines duplicated, altered or out of order: %s", tl)
	}
	if len(dropLines) == 0 || tl.lost == 0 {
		t.Errorf("the spool limit never acted: %d drops logged, %d lines lost", len(dropLines), tl.lost)
	}
	if !keepsNewest && enospc == 0 {
		t.Errorf("the disk never filled (no ENOSPC in the plugin log): the case tested the limit only")
	}
	if tl.lost != segDropped+appendDropped {
		t.Errorf("%d lines lost but the plugin logged %d records dropped with segments and %d on write errors", tl.lost, segDropped, appendDropped)
	}
	if keepsNewest && tl.lost > 0 && tl.missing[len(tl.missing)-1] == len(lines)-1 {
		t.Errorf("the newest line was dropped (drop-oldest keeps the newest)")
	}
	for _, l := range dropLines[:min(2, len(dropLines))] {
		t.Logf("drop logged: %s", l)
	}
}

// with returns f.settings() with the given KEY=VALUE settings replacing
// those of the same key.
func (f *faults) with(overrides ...string) []string {
	out := f.settings()
	for _, o := range overrides {
		k, _, _ := strings.Cut(o, "=")
		i := slices.IndexFunc(out, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
		if i >= 0 {
			out[i] = o
		} else {
			out = append(out, o)
		}
	}
	return out
}

// median of a few durations.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// stopAsync runs `docker stop -t 10` on a container in the background and
// returns a channel that delivers its result.
func stopAsync(name string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, _, err := run(context.Background(), nil, "docker", "stop", "-t", "10", name)
		done <- err
	}()
	return done
}

// roundAll rounds durations to milliseconds for logging.
func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
