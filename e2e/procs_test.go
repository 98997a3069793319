package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Processes the fault tests act on: dockerd (found, stopped, started again
// as it was), the plugin's process under its containerd shim, and the
// plugin's output in dockerd's log.

// daemonProc is what restarting dockerd the way it was started needs.
type daemonProc struct {
	pid  int
	exe  string
	args []string
	env  []string
	dir  string
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
	// The daemon outlives the test: it must not inherit the descriptors
	// the test got from its callers (such as the lock file of a
	// `flock LOCK make e2e`, whose lock it would then hold forever).
	if err := closeInheritedOnExec(); err != nil {
		t.Fatal(err)
	}
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

// closeInheritedOnExec marks every descriptor of the process above stderr
// close-on-exec. Go opens its own files that way; the others came from the
// process that started the test (make's job server, a flock(1) lock) and
// would otherwise pass to every program the test starts.
func closeInheritedOnExec() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
	return nil
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
