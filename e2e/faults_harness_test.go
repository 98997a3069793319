package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/internal/loggen"
)

// The fault-injection harness. It owns the machine-level state the fault
// tests disturb (MinIO up or down, the plugin process, the plugin's
// settings, dockerd itself) and puts it back after every test, so a failing
// test does not poison the next one. newFaultCase sets up one fault test.

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

// daemonProc is what restarting dockerd the way it was started needs.
type daemonProc struct {
	pid  int
	exe  string
	args []string
	env  []string
	dir  string
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

// logOffset is the current size of dockerd's log.
func (f *faults) logOffset(t testing.TB) int64 {
	t.Helper()
	fi, err := os.Stat(f.logPath)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// pluginLines returns the lines of dockerd's log from offset on that carry
// the plugin's own output (tagged plugin=<id> by dockerd).
func (f *faults) pluginLines(t testing.TB, from int64) []string {
	t.Helper()
	fh, err := os.Open(f.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := fh.Seek(from, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, " plugin=") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", f.logPath, err)
	}
	return lines
}

// grepLog returns the plugin log lines from offset on holding every one of subs.
func (f *faults) grepLog(t testing.TB, from int64, subs ...string) []string {
	t.Helper()
	var hits []string
	for _, l := range f.pluginLines(t, from) {
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			hits = append(hits, l)
		}
	}
	return hits
}

// waitLog polls the plugin log from offset on until a line holds every one
// of subs, and returns it.
func (f *faults) waitLog(t testing.TB, from int64, timeout time.Duration, subs ...string) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if hits := f.grepLog(t, from, subs...); len(hits) > 0 {
			return hits[0]
		}
		if time.Now().After(deadline) {
			lines := f.pluginLines(t, from)
			t.Fatalf("no plugin log line with %q within %v; plugin log since then (%d lines):\n%s",
				subs, timeout, len(lines), strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
		time.Sleep(pollInterval)
	}
}

// waitStarted waits until the plugin with id logged "s3logs started" after
// offset (it logs that once re-attach and the spool scan are done).
func (f *faults) waitStarted(t testing.TB, from int64, id string, timeout time.Duration) {
	t.Helper()
	f.waitLog(t, from, timeout, "plugin="+id, `msg=\"s3logs started\"`)
}

// procStat returns a process's parent pid and state from /proc.
func procStat(pid int) (ppid int, state byte, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 2 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, fields[0][0], err
}

// pidAlive reports whether pid exists and is not a zombie.
func pidAlive(pid int) bool {
	_, st, err := procStat(pid)
	return err == nil && st != 'Z' && st != 'X'
}

// procArgs returns a process's command line.
func procArgs(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// pids lists the numeric entries of /proc.
func pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// pluginPID finds the plugin's process: the child of the containerd shim
// that runs the plugin id (`containerd-shim-runc-v2 -namespace plugins.moby
// -id <id>`). It returns 0 when there is none.
func pluginPID(id string) int {
	shims := map[int]bool{}
	all := pids()
	for _, p := range all {
		args := procArgs(p)
		if len(args) > 0 && strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			if i := slices.Index(args, "-id"); i >= 0 && i+1 < len(args) && args[i+1] == id {
				shims[p] = true
			}
		}
	}
	for _, p := range all {
		if pp, st, err := procStat(p); err == nil && shims[pp] && st != 'Z' {
			if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); err == nil && !strings.HasPrefix(string(comm), "runc") {
				return p
			}
		}
	}
	return 0
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

// waitPluginPID waits until the plugin runs as a process other than old.
func (f *faults) waitPluginPID(t testing.TB, id string, old int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if p := pluginPID(id); p != 0 && p != old {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin %s not running as a new process (old pid %d) within %v", id, old, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// findDaemon finds the dockerd process the docker CLI talks to: the only
// dockerd, or the one listening on DOCKER_HOST.
func findDaemon() (daemonProc, error) {
	host := envOr("DOCKER_HOST", "unix:///var/run/docker.sock")
	var found []daemonProc
	for _, p := range pids() {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		if err != nil || strings.TrimSpace(string(comm)) != "dockerd" || !pidAlive(p) {
			continue
		}
		d := daemonProc{pid: p, args: procArgs(p)}
		if d.exe, err = os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); err != nil {
			return d, err
		}
		if d.dir, err = os.Readlink(fmt.Sprintf("/proc/%d/cwd", p)); err != nil {
			return d, err
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p))
		if err != nil {
			return d, err
		}
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv != "" {
				d.env = append(d.env, kv)
			}
		}
		var hosts []string
		for i, a := range d.args {
			switch {
			case (a == "-H" || a == "--host") && i+1 < len(d.args):
				hosts = append(hosts, d.args[i+1])
			case strings.HasPrefix(a, "--host="), strings.HasPrefix(a, "-H="):
				_, v, _ := strings.Cut(a, "=")
				hosts = append(hosts, v)
			}
		}
		if len(hosts) == 0 {
			hosts = []string{"unix:///var/run/docker.sock"}
		}
		for _, h := range hosts {
			if h == host || strings.TrimPrefix(h, "unix://") == strings.TrimPrefix(host, "unix://") {
				found = append(found, d)
				break
			}
		}
	}
	if len(found) != 1 {
		return daemonProc{}, fmt.Errorf("%d dockerd processes listen on %s", len(found), host)
	}
	return found[0], nil
}

// stopDaemon sends dockerd SIGTERM and waits until it has exited.
func (f *faults) stopDaemon(t testing.TB) time.Duration {
	t.Helper()
	start := time.Now()
	if err := syscall.Kill(f.daemon.pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM dockerd %d: %v", f.daemon.pid, err)
	}
	deadline := start.Add(daemonTimeout)
	for pidAlive(f.daemon.pid) {
		if time.Now().After(deadline) {
			t.Fatalf("dockerd %d still running %v after SIGTERM", f.daemon.pid, daemonTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// startDaemon starts dockerd again with the executable, arguments,
// environment and working folder it had, its stdout and stderr appended to
// the same log, in its own session so it outlives the test binary; then it
// waits until the daemon answers.
func (f *faults) startDaemon(t testing.TB) time.Duration {
	t.Helper()
	start := time.Now()
	logf, err := os.OpenFile(f.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	cmd := &exec.Cmd{Path: f.daemon.exe, Args: f.daemon.args, Env: f.daemon.env, Dir: f.daemon.dir,
		Stdin: null, Stdout: logf, Stderr: logf, SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	f.daemon.pid = cmd.Process.Pid
	go cmd.Wait() // reaps it should it exit while the tests run
	f.waitDaemon(t)
	return time.Since(start)
}

// waitDaemon waits until `docker version` reaches the server.
func (f *faults) waitDaemon(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(daemonTimeout)
	for {
		if _, _, err := run(context.Background(), nil, "docker", "version", "--format", "{{.Server.Version}}"); err == nil {
			return
		}
		if !pidAlive(f.daemon.pid) {
			t.Fatalf("dockerd (pid %d) exited during start-up; see %s", f.daemon.pid, f.logPath)
		}
		if time.Now().After(deadline) {
			t.Fatalf("dockerd not answering %v after start", daemonTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// randomMarker returns a recognizable random string.
func randomMarker(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// spoolFiles lists the segment files (sealed or in progress, not metadata
// or sequence files) in the spool, for the container ids given or for all
// when none are.
func (f *faults) spoolFiles(t testing.TB, ids ...string) (sealed, partial []string) {
	t.Helper()
	root := filepath.Join(f.spool, "segments")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if len(ids) > 0 && !slices.Contains(ids, filepath.Dir(rel)) {
			return nil
		}
		switch {
		case strings.HasSuffix(p, ".jsonl.zst"):
			sealed = append(sealed, rel)
		case strings.HasSuffix(p, ".jsonl.zst.partial"):
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

// eachObject downloads every object of c in key order and calls fn with
// its decompressed records, one object at a time.
func (c *container) eachObject(t testing.TB, fn func(o object, records []byte)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	objs, err := c.s.list(ctx, c.bucket, c.prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		raw, _, err := c.s.getObject(ctx, c.bucket, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		body, err := c.s.zdec.DecodeAll(raw, nil)
		if err != nil {
			t.Fatalf("zstd decode %s/%s: %v", c.bucket, o.Key, err)
		}
		fn(o, body)
	}
}

// fetchAll downloads every object of c in key order and returns the
// concatenated log of each stream and the record count. Records are parsed
// with a fast path for the plain lines the generator writes in ModeLines
// and ModeBulk and with encoding/json otherwise; either way the json-file
// format is checked.
func (c *container) fetchAll(t testing.TB) (objs []object, out, errOut []byte, records int) {
	t.Helper()
	c.eachObject(t, func(o object, body []byte) {
		objs = append(objs, o)
		for line := range bytes.Lines(body) {
			stream, log, err := parseRecord(line)
			if err != nil {
				t.Fatalf("object %s/%s record %d: %v", c.bucket, o.Key, records, err)
			}
			if stream == "stderr" {
				errOut = append(errOut, log...)
			} else {
				out = append(out, log...)
			}
			records++
		}
	})
	return objs, out, errOut, records
}

var (
	recHead   = []byte(`{"log":"`)
	recStdout = []byte(`\n","stream":"stdout","time":"`)
	recTail   = []byte("Z\"}\n")
)

// parseRecord returns the stream and log of one json-file line.
func parseRecord(line []byte) (stream string, log []byte, err error) {
	// Fast path: {"log":"<text without escapes>\n","stream":"stdout","time":"...Z"}
	if rest, ok := bytes.CutPrefix(line, recHead); ok && bytes.HasSuffix(line, recTail) {
		if i := bytes.Index(rest, recStdout); i >= 0 && bytes.IndexByte(rest[:i], '\\') < 0 && bytes.IndexByte(rest[:i], '"') < 0 {
			ts := rest[i+len(recStdout) : len(rest)-3]
			if len(ts) >= 20 && bytes.IndexByte(ts, '"') < 0 {
				return "stdout", append(rest[:i:i], '\n'), nil
			}
		}
	}
	var r record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return "", nil, fmt.Errorf("%q: %w", trunc(line), err)
	}
	if r.Stream != "stdout" && r.Stream != "stderr" {
		return "", nil, fmt.Errorf("%q: stream %q", trunc(line), r.Stream)
	}
	if _, err := time.Parse(time.RFC3339Nano, r.Time); err != nil || !strings.HasSuffix(r.Time, "Z") {
		return "", nil, fmt.Errorf("%q: time %q is not RFC 3339 UTC", trunc(line), r.Time)
	}
	return r.Stream, []byte(r.Log), nil
}

// lineTally compares stored lines with the generator's writes 0..n-1.
type lineTally struct {
	written, stored, lost, dups, foreign int
	outOfOrder                           int // lines whose number is below an earlier one
	missing                              []int
}

func (l lineTally) String() string {
	m := l.missing
	if len(m) > 20 {
		m = m[:20]
	}
	return fmt.Sprintf("written=%d stored=%d lost=%d duplicates=%d foreign=%d out_of_order=%d first_missing=%v",
		l.written, l.stored, l.lost, l.dups, l.foreign, l.outOfOrder, m)
}

// tally matches the stored lines against want, the generator's lines
// 0..n-1 of one stream, line by line: every stored line must equal one of
// them exactly; it counts lost, duplicated and foreign lines.
func tally(stored []byte, want [][]byte) lineTally {
	index := make(map[string]int, len(want))
	for i, w := range want {
		index[string(w)] = i
	}
	seen := make([]int, len(want))
	l := lineTally{written: len(want)}
	last := -1
	for line := range bytes.Lines(stored) {
		l.stored++
		i, ok := index[string(line)]
		if !ok {
			l.foreign++
			continue
		}
		if i < last {
			l.outOfOrder++
		}
		last = i
		seen[i]++
	}
	for i, n := range seen {
		switch {
		case n == 0:
			l.lost++
			l.missing = append(l.missing, i)
		case n > 1:
			l.dups += n - 1
		}
	}
	return l
}

// splitLines splits a generator's output into its lines, newline included.
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for line := range bytes.Lines(b) {
		out = append(out, line)
	}
	return out
}

// checkNoSecrets fails t for every place where one of f.secrets occurs:
// the plugin's log since the test began (at LOG_LEVEL=debug), the files in
// the spool, and every object on the test's MinIO, body (raw and
// decompressed) and metadata.
func (f *faults) checkNoSecrets(t *testing.T) {
	t.Helper()
	files, hits := f.spoolSecrets(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	buckets, err := f.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	nobj := 0
	for _, b := range buckets.Buckets {
		objs, err := f.list(ctx, aws.ToString(b.Name), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			body, meta, err := f.getObject(ctx, aws.ToString(b.Name), o.Key)
			if err != nil {
				t.Fatal(err)
			}
			where := "s3://" + aws.ToString(b.Name) + "/" + o.Key
			hits = append(hits, findSecrets(where, body, f.secrets)...)
			var metaText strings.Builder
			for k, v := range meta {
				fmt.Fprintf(&metaText, "%s=%s\n", k, v)
			}
			hits = append(hits, findSecrets(where+" metadata", []byte(metaText.String()), f.secrets)...)
			nobj++
		}
	}
	logLines := f.pluginLines(t, f.logStart)
	for i, l := range logLines {
		hits = append(hits, findSecrets(fmt.Sprintf("plugin log line %d", i), []byte(l), f.secrets)...)
	}
	t.Logf("MEASURE secrets: secrets=%d spool_files=%d objects=%d buckets=%d plugin_log_lines=%d found=%d",
		len(f.secrets), files, nobj, len(buckets.Buckets), len(logLines), len(hits))
	for _, h := range hits {
		t.Errorf("secret leaked: %s", h)
	}
}

// spoolSecrets reads every file in the spool and returns how many there
// are and where one of f.secrets occurs.
func (f *faults) spoolSecrets(t testing.TB) (files int, hits []string) {
	t.Helper()
	err := filepath.WalkDir(f.spool, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		hits = append(hits, findSecrets(p, b, f.secrets)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, hits
}

// findSecrets reports where any of secrets occurs in data (raw) or, if data
// is zstd, in its decompressed content as far as it decodes (a segment in
// progress ends mid-frame).
func findSecrets(where string, data []byte, secrets map[string]string) []string {
	hits := scanSecrets(where+" (raw)", bytes.NewReader(data), secrets)
	if len(data) >= 4 && bytes.Equal(data[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		r, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1))
		if err == nil {
			hits = append(hits, scanSecrets(where+" (decompressed)", r, secrets)...)
			r.Close()
		}
	}
	return hits
}

// scanSecrets reads r to its end or first error in chunks that overlap by
// the longest secret, so memory stays small whatever r holds, and reports
// which secrets occur.
func scanSecrets(where string, r io.Reader, secrets map[string]string) []string {
	longest := 0
	for _, v := range secrets {
		longest = max(longest, len(v))
	}
	buf := make([]byte, 0, 1<<20+longest)
	found := map[string]bool{}
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for name, v := range secrets {
			found[name] = found[name] || bytes.Contains(buf, []byte(v))
		}
		if err != nil {
			break
		}
		if len(buf) > longest {
			buf = buf[:copy(buf, buf[len(buf)-longest:])]
		}
	}
	var hits []string
	for name, ok := range found {
		if ok {
			hits = append(hits, fmt.Sprintf("%s holds %s", where, name))
		}
	}
	slices.Sort(hits)
	return hits
}

// checkDropAccounting checks what reached S3 from c (container id cid)
// against the drops the plugin logged since offset from: nothing
// duplicated, reordered or altered, the limit acted (and, unless
// keepsNewest, the disk filled), the newest line kept when keepsNewest, and
// exactly the logged records missing.
func (f *faults) checkDropAccounting(t *testing.T, c *container, cid string, from int64, what string, keepsNewest bool) {
	t.Helper()
	f.waitSpoolEmpty(t, slowDeadline, cid)
	dropLines := f.grepLog(t, from, "spool full: dropped ", "container="+cid) // one line per segment, then one per container and visit
	segDropped := logInts(dropLines, "records")
	appendDropped := logInts(f.grepLog(t, from, "log records not stored", "container="+cid[:12]), "dropped")
	appendDropped += logInts(f.grepLog(t, from, "records lost to a write error", "container="+cid), "records")
	enospc := len(f.grepLog(t, from, "no space left on device"))
	_, out, _, _ := c.fetchAll(t)
	want, _ := loggen.Expected(c.spec, c.spec.Count())
	lines := splitLines(want)
	tl := tally(out, lines)
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

// logInts sums the integer attribute name= over log lines.
func logInts(lines []string, name string) (sum int) {
	for _, l := range lines {
		i := strings.Index(l, " "+name+"=")
		if i < 0 {
			continue
		}
		v := l[i+len(name)+2:]
		if j := strings.IndexAny(v, ` \"`); j >= 0 {
			v = v[:j]
		}
		n, _ := strconv.Atoi(v)
		sum += n
	}
	return sum
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

// drainOrphanFIFOs reads, until done delivers, every logging FIFO that
// dockerd still holds open inside the rootfs of the removed plugin oldID
// (the files are deleted, but dockerd's descriptors reach the pipes). It
// unblocks a container whose logs nobody reads any more, and returns the
// bytes drained and done's result.
func (f *faults) drainOrphanFIFOs(t testing.TB, oldID string, done <-chan error) (int64, error) {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", f.daemon.pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	var pipes []*os.File
	for _, e := range ents {
		p := filepath.Join(fdDir, e.Name())
		target, err := os.Readlink(p)
		if err != nil || !strings.Contains(target, "/plugins/"+oldID) || !strings.Contains(target, "/run/docker/logging/") {
			continue
		}
		fh, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Logf("open %s (%s): %v", p, target, err)
			continue
		}
		defer fh.Close()
		pipes = append(pipes, fh)
	}
	var n int64
	buf := make([]byte, 64<<10)
	for {
		select {
		case err := <-done:
			return n, err
		default:
		}
		for _, fh := range pipes {
			_ = fh.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			k, _ := fh.Read(buf)
			n += int64(k)
		}
		if len(pipes) == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// line0Time parses the plugin's own time= from a dockerd log line.
func line0Time(t testing.TB, line string) time.Time {
	t.Helper()
	i := strings.Index(line, `msg="time=`)
	if i < 0 {
		t.Fatalf("no plugin time in %q", line)
	}
	v := line[i+len(`msg="time=`):]
	if j := strings.IndexByte(v, ' '); j >= 0 {
		v = v[:j]
	}
	ts, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		t.Fatalf("plugin time %q: %v", v, err)
	}
	return ts
}

// roundAll rounds durations to milliseconds for logging.
func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
