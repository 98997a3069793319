package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// it is 100 on every Linux architecture Go supports.
const clockTicks = 100

// pluginPID returns the process of an installed managed plugin: the one
// process named proc whose cgroup path holds the plugin's id, so another
// plugin running the same binary is never mistaken for it.
func pluginPID(plugin, proc string) (int, error) {
	id, err := docker("plugin", "inspect", "-f", "{{.ID}}", plugin)
	if err != nil {
		return 0, err
	}
	out, err := exec.Command("pgrep", "-x", proc).Output()
	if err != nil {
		return 0, fmt.Errorf("pgrep -x %s: %w (is %s enabled?)", proc, err, plugin)
	}
	for _, f := range strings.Fields(string(out)) {
		cg, err := os.ReadFile("/proc/" + f + "/cgroup")
		if err == nil && bytes.Contains(cg, []byte(id)) {
			return strconv.Atoi(f)
		}
	}
	return 0, fmt.Errorf("no %s process in the cgroup of plugin %s (%s)", proc, plugin, id)
}

// daemonPID returns the pid of the dockerd the docker CLI talks to: the
// only one, or, when another engine runs beside it (with its own -H
// socket, as some tests start), the one that listens on $DOCKER_HOST, by
// default the unix socket /var/run/docker.sock.
func daemonPID() (int, error) {
	out, err := exec.Command("pgrep", "-x", "dockerd").Output()
	if err != nil {
		return 0, fmt.Errorf("pgrep -x dockerd: %w (is it running?)", err)
	}
	host := strings.TrimPrefix(os.Getenv("DOCKER_HOST"), "unix://")
	if host == "" {
		host = "/var/run/docker.sock"
	}
	all := strings.Fields(string(out))
	var match []string
	for _, p := range all {
		if len(all) == 1 || slices.Contains(daemonHosts(p), host) {
			match = append(match, p)
		}
	}
	if len(match) != 1 {
		return 0, fmt.Errorf("%d of the dockerd processes %v listen on %s, want 1", len(match), all, host)
	}
	return strconv.Atoi(match[0])
}

// daemonHosts returns the addresses the dockerd pid listens on, from its
// -H/--host flags (unix:// stripped); none means the default socket.
func daemonHosts(pid string) []string {
	b, err := os.ReadFile("/proc/" + pid + "/cmdline")
	if err != nil {
		return nil
	}
	args := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	var hosts []string
	for i, a := range args {
		v, ok := "", false
		switch {
		case (a == "-H" || a == "--host") && i+1 < len(args):
			v, ok = args[i+1], true
		case strings.HasPrefix(a, "-H="), strings.HasPrefix(a, "--host="):
			_, v, ok = strings.Cut(a, "=")
		}
		if ok {
			hosts = append(hosts, strings.TrimPrefix(v, "unix://"))
		}
	}
	if len(hosts) == 0 {
		hosts = []string{"/var/run/docker.sock"}
	}
	return hosts
}

// cpuSeconds returns utime+stime of pid (all its threads) in seconds.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return float64(u+s) / clockTicks, nil
}

// memStatus is the memory part of /proc/<pid>/status, in bytes.
type memStatus struct {
	RSS, HWM int64
	Threads  int
}

func readStatus(pid int) (memStatus, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, err
	}
	defer f.Close()
	var m memStatus
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fields[0], 10, 64)
		switch k {
		case "VmRSS":
			m.RSS = n << 10
		case "VmHWM":
			m.HWM = n << 10
		case "Threads":
			m.Threads = int(n)
		}
	}
	return m, sc.Err()
}

// resetPeak resets VmHWM of pid to its current RSS (Linux 4.0+).
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// openFDs counts the open file descriptors of pid.
func openFDs(pid int) (int, error) {
	entries, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	return len(entries), err
}

// machine describes the host for the report.
type machine struct {
	Cores  int
	Memory int64 // bytes
	Kernel string
	CPU    string
}

func describeMachine() machine {
	var m machine
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, _ := strings.Cut(line, ":")
			k = strings.TrimSpace(k)
			if k == "processor" {
				m.Cores++
			}
			if k == "model name" && m.CPU == "" {
				m.CPU = strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					n, _ := strconv.ParseInt(f[0], 10, 64)
					m.Memory = n << 10
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// settle lets the next timed run start on a quiet machine: it flushes the
// dirty page cache (sync(2); the files of the run before would otherwise
// be written back during this one) and waits until the CPUs were at least
// 85% idle over 200 ms, for at most timeout (a machine that stays busy is
// measured as it is).
func settle(timeout time.Duration) error {
	syscall.Sync()
	deadline := time.Now().Add(timeout)
	idle0, total0, err := cpuTimes()
	if err != nil {
		return err
	}
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		idle, total, err := cpuTimes()
		if err != nil {
			return err
		}
		if total > total0 && float64(idle-idle0) >= 0.85*float64(total-total0) {
			return nil
		}
		idle0, total0 = idle, total
	}
	return nil
}

// cpuTimes returns the idle (idle and iowait) and total ticks of all CPUs
// since boot, from /proc/stat.
func cpuTimes() (idle, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return parseCPULine(string(line))
}

// parseCPULine reads the idle and total ticks from /proc/stat's first
// line: "cpu  user nice system idle iowait irq softirq steal guest
// guest_nice" (guest time is already in user).
func parseCPULine(line string) (idle, total uint64, err error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: first line %q, want \"cpu\" and 8 counters", line)
	}
	for i, s := range f[1:9] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: counter %d of %q: %w", i+1, line, err)
		}
		total += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	return idle, total, nil
}
