package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
)

// TestRegistry publishes the plugin to a registry and installs and upgrades
// it from there, as users do, against a local registry (Debian's
// docker-registry on 127.0.0.1, which dockerd treats as insecure by default):
//
//   - `make push` publishes two builds as tags v1 and v2 and leaves no local
//     plugin under those names;
//   - `docker plugin install --alias` installs v1, and a container logging
//     through the alias lands in MinIO byte for byte;
//   - the upgrade procedure the README gives (stop the containers that log
//     through the plugin, disable, upgrade, set spool.source again, enable,
//     start them) loses nothing;
//   - disable --force and enable without an upgrade, with a container
//     running, loses nothing (the plugin re-attaches to its FIFO);
//   - a forced upgrade with containers running (disable --force, upgrade
//     back to v1, enable) is measured: what reached S3 (always a byte-exact
//     prefix of what each container wrote), the lines lost, and how long
//     `docker stop` takes, for a slow writer and for one that fills the pipe.
//
// The registry process is stopped by pid and its storage (with the tags) is
// a temporary folder; the installed alias is removed at the end.
func TestRegistry(t *testing.T) {
	s := newSuite(t)
	reg := startRegistry(t)
	repo := reg.addr + "/s3logs-e2e-" + s.runID
	v1, v2 := repo+":v1", repo+":v2"
	for _, ref := range []string{v1, v2} {
		took := regMake(t, "push", "PLUGIN="+ref)
		if _, _, err := run(context.Background(), nil, "docker", "plugin", "inspect", ref); err == nil {
			t.Fatalf("make push left a local plugin named %s", ref)
		}
		t.Logf("MEASURE registry: make push %s took %v", ref, took.Round(time.Millisecond))
	}

	// As the README installs it: installed disabled with the non-secret
	// settings, credentials set, then enabled.
	alias := "s3logs-e2e-reg-" + s.runID
	spool := t.TempDir()
	if err := os.Chmod(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	docker(t, "plugin", "install", "--grant-all-permissions", "--disable", "--alias", alias, v1,
		"spool.source="+spool, "AWS_REGION="+s.minio.Region, "LOG_LEVEL=debug")
	t.Cleanup(func() {
		if _, _, err := run(context.Background(), nil, "docker", "plugin", "rm", "--force", alias); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	docker(t, "plugin", "set", alias, "AWS_ACCESS_KEY_ID="+s.minio.AccessKey, "AWS_SECRET_ACCESS_KEY="+s.minio.SecretKey)
	docker(t, "plugin", "enable", alias)
	t.Logf("MEASURE registry: docker plugin install --alias %s %s, set, enable took %v", alias, v1, time.Since(begin).Round(time.Millisecond))
	p := &regPlugin{alias: alias, spool: spool}
	if info := p.inspect(t); info.PluginReference != v1 || !info.Enabled {
		t.Fatalf("after install: reference %q enabled %v, want %q enabled", info.PluginReference, info.Enabled, v1)
	}
	// Containers name the alias as their log driver, without a tag.
	rs := *s
	rs.plugin = alias

	if !t.Run("install", func(t *testing.T) {
		spec := loggen.Spec{Mode: loggen.ModeInterleave, Lines: 3000}
		c := rs.start(t, "reg-install", spec)
		at := c.wait(t)
		wantOut, wantErr := loggen.Expected(c.spec, c.spec.Count())
		objs, took := c.waitContent(t, at, at.Add(slowDeadline), wantOut, wantErr)
		c.verifyCLI(t, objs, wantOut, wantErr)
		t.Logf("MEASURE registry: installed %s: %d lines in %d objects, complete %v after exit",
			v1, c.spec.Count(), len(objs), took.Round(time.Millisecond))
	}) {
		return
	}

	if !t.Run("upgrade-procedure", func(t *testing.T) {
		spec := loggen.Spec{Mode: loggen.ModeLines, Lines: 2000, Rate: 1000, Sleep: true, CountFile: "/runs"}
		c := rs.start(t, "reg-safe", spec)
		run1, _ := loggen.Expected(c.spec, c.spec.Count())
		c.waitDockerLogs(t, run1)

		// What Docker refuses while the container runs.
		_, _, err := run(context.Background(), nil, "docker", "plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", alias, v2)
		if err == nil || !strings.Contains(err.Error(), "disabled") {
			t.Fatalf("docker plugin upgrade of an enabled plugin: %v, want a refusal saying it must be disabled", err)
		}
		t.Logf("MEASURE registry: upgrade while enabled: %v", regErrLine(err))
		_, _, err = run(context.Background(), nil, "docker", "plugin", "disable", alias)
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("docker plugin disable with a container running: %v, want a refusal (in use)", err)
		}
		t.Logf("MEASURE registry: disable without --force while a container logs through the plugin: %v", regErrLine(err))

		// 1. Stop the containers that log through the plugin: every line
		// they wrote is stored and uploaded.
		begin := time.Now()
		at := c.stop(t)
		stopTook := at.Sub(begin)
		objs, took := c.waitContent(t, at, at.Add(slowDeadline), run1, nil)
		// 2. Disable (no --force needed any more) and upgrade.
		disableTook := regTimed(t, "plugin", "disable", alias)
		// Without --skip-remote-check the CLI asks "Plugin images do not
		// match, are you sure?" for any other tag; unanswered, nothing is
		// upgraded.
		out, _, err := run(context.Background(), nil, "docker", "plugin", "upgrade", "--grant-all-permissions", alias, v2)
		ref := p.inspect(t).PluginReference
		t.Logf("MEASURE registry: upgrade to another tag without --skip-remote-check and no answer: err=%v, reference still %s (%q)",
			err, ref, bytes.TrimSpace(out))
		if ref != v1 {
			t.Fatalf("an unanswered upgrade prompt upgraded the plugin to %s", ref)
		}
		upgradeTook := regTimed(t, "plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", alias, v2)
		info := p.inspect(t)
		if info.PluginReference != v2 {
			t.Fatalf("after upgrade: reference %q, want %q", info.PluginReference, v2)
		}
		// 3. Docker keeps the environment settings but runs the new
		// config.json's default mount source, while inspect's Settings
		// still shows the old one: set spool.source again.
		keptEnv := regHasEnv(info.Settings.Env, "LOG_LEVEL=debug") && regHasEnv(info.Settings.Env, "AWS_ACCESS_KEY_ID="+s.minio.AccessKey)
		runSource, shownSource := info.mountSource(true), info.mountSource(false)
		t.Logf("MEASURE registry: after docker plugin upgrade: env settings kept=%v; spool mount source the plugin would run with %q, shown in Settings %q (set %q)",
			keptEnv, runSource, shownSource, spool)
		if !keptEnv {
			t.Errorf("docker plugin upgrade dropped environment settings: %q", info.Settings.Env)
		}
		docker(t, "plugin", "set", alias, "spool.source="+spool)
		if got := p.inspect(t).mountSource(true); got != spool {
			t.Fatalf("after docker plugin set spool.source=%s the plugin's mount source is %q", spool, got)
		}
		// 4. Enable and start the containers again.
		enableTook := regTimed(t, "plugin", "enable", alias)
		p.waitSpoolLocked(t)
		docker(t, "start", c.name)
		spec2 := c.spec
		spec2.Run = 2
		run2, _ := loggen.Expected(spec2, spec2.Count())
		c.waitDockerLogs(t, append(bytes.Clone(run1), run2...))
		at = c.stop(t)
		objs, _ = c.waitContent(t, at, at.Add(slowDeadline), append(bytes.Clone(run1), run2...), nil)
		c.verifyCLI(t, objs, append(bytes.Clone(run1), run2...), nil)
		t.Logf("MEASURE registry: upgrade procedure %s -> %s: docker stop %v (all %d lines in S3 %v after it), disable %v, upgrade %v, enable %v; both runs in S3, 0 lost",
			v1, v2, stopTook.Round(time.Millisecond), c.spec.Count(), took.Round(time.Millisecond),
			disableTook.Round(time.Millisecond), upgradeTook.Round(time.Millisecond), enableTook.Round(time.Millisecond))
	}) {
		return
	}

	if !t.Run("force-disable-enable-running", func(t *testing.T) {
		// For contrast: disable --force and enable again without an
		// upgrade (as a settings change does) keeps the rootfs, so the
		// restarted plugin re-attaches to the running container's FIFO.
		c := rs.start(t, "reg-reattach", loggen.Spec{Mode: loggen.ModeLines, Lines: 1_000_000, Rate: 1000, Report: "/written"})
		c.waitSomeDockerLogs(t)
		time.Sleep(2 * time.Second)
		disableTook := regTimed(t, "plugin", "disable", "--force", alias)
		docker(t, "plugin", "set", alias, "LOG_LEVEL=debug")
		enableTook := regTimed(t, "plugin", "enable", alias)
		time.Sleep(3 * time.Second)
		begin := time.Now()
		at := c.stop(t)
		n := c.reportedLines(t)
		want, _ := loggen.Expected(c.spec, n)
		objs, _ := c.waitContent(t, at, at.Add(slowDeadline), want, nil)
		c.verifyCLI(t, objs, want, nil)
		t.Logf("MEASURE registry: disable --force (%v) and enable (%v) without upgrade, container running at %.0f lines/s: %d of %d lines in S3, 0 lost; docker stop took %v",
			disableTook.Round(time.Millisecond), enableTook.Round(time.Millisecond), c.spec.Rate, n, n, at.Sub(begin).Round(time.Millisecond))
	}) {
		return
	}

	t.Run("forced-upgrade-running", func(t *testing.T) {
		// slow writes 200 short lines/s: it does not fill the 1 MiB pipe
		// within the test; fast writes 5,000/s and fills it in seconds.
		slow := rs.start(t, "reg-slow", loggen.Spec{Mode: loggen.ModeLines, Lines: 1_000_000, Rate: 200, Report: "/written"})
		fast := rs.start(t, "reg-fast", loggen.Spec{Mode: loggen.ModeLines, Lines: 10_000_000, Rate: 5000, Report: "/written"})
		for _, c := range []*container{slow, fast} {
			c.waitSomeDockerLogs(t)
		}
		time.Sleep(2 * time.Second) // both log through the plugin for a while
		oldID := p.inspect(t).ID
		disableTook := regTimed(t, "plugin", "disable", "--force", alias)
		upgradeTook := regTimed(t, "plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", alias, v1)
		docker(t, "plugin", "set", alias, "spool.source="+spool)
		enableTook := regTimed(t, "plugin", "enable", alias)
		p.waitSpoolLocked(t)
		if ref := p.inspect(t).PluginReference; ref != v1 {
			t.Fatalf("after the forced upgrade: reference %q, want %q", ref, v1)
		}
		for _, c := range []*container{slow, fast} {
			if !c.running(t) {
				t.Fatalf("%s stopped during the forced upgrade", c.name)
			}
		}
		time.Sleep(5 * time.Second)

		// Stop both; a stop that has not returned after stopBound is
		// unblocked by reading the pipes Docker still holds open in the
		// deleted old rootfs, so the engine stays usable.
		const stopBound = 30 * time.Second
		begin := time.Now()
		done := map[*container]<-chan error{slow: regStopAsync(slow.name), fast: regStopAsync(fast.name)}
		type result struct {
			took    time.Duration
			hung    bool
			drained int64
		}
		results := map[*container]*result{}
		for _, c := range []*container{slow, fast} {
			r := &result{}
			results[c] = r
			select {
			case err := <-done[c]:
				r.took = time.Since(begin)
				if err != nil {
					t.Errorf("docker stop %s: %v", c.name, err)
				}
			case <-time.After(time.Until(begin.Add(stopBound))):
				r.hung = true
				var err error
				r.drained, err = regDrainDeletedFIFOs(t, oldID, done[c], 2*time.Minute)
				r.took = time.Since(begin)
				if err != nil {
					t.Errorf("docker stop %s, after draining the old rootfs' pipes: %v", c.name, err)
				}
			}
		}

		for _, c := range []*container{slow, fast} {
			r := results[c]
			p.waitSpoolEmpty(t, c.id(t))
			f := &fetcher{c: c, cache: map[string]*streams{}}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			objs, st, _, err := f.snapshot(ctx)
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			// What reached S3 is exactly the first k lines written.
			k := st.records
			want, _ := loggen.Expected(c.spec, k)
			if !bytes.Equal(st.out, want) || len(st.err) > 0 {
				t.Errorf("%s: S3 holds %d records that are not the first %d lines written: %s", c.name, k, k, diff(st.out, want))
			}
			if len(objs) > 0 {
				c.verifyCLI(t, objs, st.out, st.err)
			}
			var state struct {
				ExitCode              int
				StartedAt, FinishedAt time.Time
			}
			if err := json.Unmarshal(docker(t, "inspect", "-f", "{{json .State}}", c.name), &state); err != nil {
				t.Fatal(err)
			}
			ran := state.FinishedAt.Sub(state.StartedAt)
			written := "unknown (no report: killed)"
			if state.ExitCode == 0 {
				n := c.reportedLines(t)
				written = fmt.Sprintf("%d in %v (its rate allows %.0f), lost %d", n, ran.Round(100*time.Millisecond), c.spec.Rate*ran.Seconds(), n-k)
			}
			t.Logf("MEASURE registry: forced upgrade with %s running (%.0f lines/s): in S3 %d lines (a byte-exact prefix), written %s; docker stop took %v (exit %d), hung past %v=%v, drained %d bytes from the deleted old rootfs' pipe",
				c.name, c.spec.Rate, k, written, r.took.Round(time.Millisecond), state.ExitCode, stopBound, r.hung, r.drained)
		}
		t.Logf("MEASURE registry: forced upgrade %s -> %s: disable --force %v, upgrade %v, enable %v",
			v2, v1, disableTook.Round(time.Millisecond), upgradeTook.Round(time.Millisecond), enableTook.Round(time.Millisecond))

		// The plugin works after all this.
		after := rs.start(t, "reg-after", loggen.Spec{Mode: loggen.ModeInterleave, Lines: 500})
		at := after.wait(t)
		wantOut, wantErr := loggen.Expected(after.spec, after.spec.Count())
		objs, _ := after.waitContent(t, at, at.Add(slowDeadline), wantOut, wantErr)
		after.verifyCLI(t, objs, wantOut, wantErr)
	})
}

// registry is a docker-registry process serving on addr.
type registry struct {
	addr string
}

// startRegistry runs Debian's docker-registry on 127.0.0.1 with a free port,
// a temporary config and storage, and stops it (by its pid) when t ends.
func startRegistry(t *testing.T) *registry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		unavailable(t, "docker-registry not on PATH (Debian package docker-registry; `make test` installs it): %v", err)
	}
	dir := t.TempDir()
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr := regFreeAddr(t)
		cfg := filepath.Join(dir, "config-"+strconv.Itoa(attempt)+".yml")
		body := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n  secret: %s\n",
			filepath.Join(dir, "data"), addr, hex.EncodeToString(secret))
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		logf, err := os.Create(filepath.Join(dir, "registry.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Fatalf("start docker-registry: %v", err)
		}
		logf.Close()
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		pid := cmd.Process.Pid
		t.Cleanup(func() { regStopProcess(t, pid, exited) })
		if lastErr = regWaitReady(addr, exited); lastErr == nil {
			t.Logf("docker-registry pid %d on %s", pid, addr)
			return &registry{addr: addr}
		}
		log, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
		t.Logf("docker-registry on %s (attempt %d): %v\n%s", addr, attempt+1, lastErr, log)
	}
	t.Fatalf("docker-registry did not start: %v", lastErr)
	return nil
}

// regFreeAddr returns a loopback address with a port that was free a moment
// ago.
func regFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// regWaitReady waits until the registry answers GET /v2/ with 200.
func regWaitReady(addr string, exited <-chan error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case werr := <-exited:
			return fmt.Errorf("exited (%v) before answering: %w", werr, err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within 15s: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// regStopProcess sends SIGTERM to pid, and SIGKILL if it has not exited
// (exited delivers Wait's result) within 10 s.
func regStopProcess(t *testing.T, pid int, exited <-chan error) {
	select {
	case <-exited:
		return
	default:
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Logf("cleanup: docker-registry pid %d ignored SIGTERM; killing it", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	}
}

// regMake runs a make target from the repository root and returns how long
// it took.
func regMake(t *testing.T, args ...string) time.Duration {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		// The enclosing `make e2e` passes its job server and level down.
		if k, _, _ := strings.Cut(kv, "="); k != "MAKEFLAGS" && k != "MFLAGS" && k != "MAKELEVEL" && k != "MAKEOVERRIDES" {
			env = append(env, kv)
		}
	}
	start := time.Now()
	out, stderr, err := run(context.Background(), env, "make", append([]string{"-C", ".."}, args...)...)
	if err != nil {
		t.Fatalf("make %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return time.Since(start)
}

// regTimed runs a docker command, fails the test on error and returns how
// long it took.
func regTimed(t *testing.T, args ...string) time.Duration {
	t.Helper()
	start := time.Now()
	docker(t, args...)
	return time.Since(start)
}

// regErrLine is the last line of a command error, Docker's message.
func regErrLine(err error) string {
	s := strings.TrimSpace(err.Error())
	if i := strings.LastIndex(s, "Error response from daemon: "); i >= 0 {
		return s[i:]
	}
	return s
}

// regHasEnv reports whether the plugin settings env hold exactly kv.
func regHasEnv(env []string, kv string) bool {
	for _, e := range env {
		if e == kv {
			return true
		}
	}
	return false
}

// regPlugin is the plugin installed from the registry under alias, on its
// own spool folder.
type regPlugin struct {
	alias string
	spool string
}

// regPluginInfo is the part of `docker plugin inspect` the test reads.
// Config.Mounts is what dockerd runs the plugin with; Settings.Mounts is
// what `docker plugin set` last recorded.
type regPluginInfo struct {
	ID              string `json:"Id"`
	Enabled         bool
	PluginReference string
	Config          struct {
		Mounts []struct{ Name, Source string }
	}
	Settings struct {
		Env    []string
		Mounts []struct{ Name, Source string }
	}
}

// mountSource returns the spool mount's source from Config (running) or
// Settings.
func (i regPluginInfo) mountSource(running bool) string {
	mounts := i.Settings.Mounts
	if running {
		mounts = i.Config.Mounts
	}
	for _, m := range mounts {
		if m.Name == "spool" {
			return m.Source
		}
	}
	return ""
}

// inspect returns the plugin's `docker plugin inspect`.
func (p *regPlugin) inspect(t testing.TB) regPluginInfo {
	t.Helper()
	var all []regPluginInfo
	if err := json.Unmarshal(docker(t, "plugin", "inspect", p.alias), &all); err != nil || len(all) != 1 {
		t.Fatalf("plugin inspect %s: %d results, %v", p.alias, len(all), err)
	}
	return all[0]
}

// waitSpoolLocked waits until a process holds the flock on the spool's
// segments/.lock, which the plugin takes at start: the plugin runs on
// this spool folder and no other.
func (p *regPlugin) waitSpoolLocked(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		locked, err := regFlocked(filepath.Join(p.spool, "segments", ".lock"))
		if err == nil && locked {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no process holds the lock of the spool %s 10s after enable (err %v): the plugin runs on another spool folder", p.spool, err)
		}
		time.Sleep(pollInterval)
	}
}

// regFlocked reports whether /proc/locks lists a flock on the file.
func regFlocked(path string) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, errors.New("no stat_t")
	}
	dev := uint64(st.Dev)
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	want := fmt.Sprintf("%02x:%02x:%d", major, minor, st.Ino)
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false, err
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && f[5] == want {
			return true, nil
		}
	}
	return false, nil
}

// waitSpoolEmpty waits until the spool holds no file of the container id:
// every segment was uploaded.
func (p *regPlugin) waitSpoolEmpty(t testing.TB, id string) {
	t.Helper()
	dir := filepath.Join(p.spool, "segments", id)
	deadline := time.Now().Add(slowDeadline)
	for {
		var left []string
		err := walkSpool(dir, func(rel string, d fs.DirEntry) error {
			if !d.IsDir() {
				left = append(left, rel)
			}
			return nil
		})
		if err == nil && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool still holds %q (%v) %v later", left, err, slowDeadline)
		}
		time.Sleep(pollInterval)
	}
}

// waitSomeDockerLogs waits until the container has logged at least one
// line (seen through Docker's local cache).
func (c *container) waitSomeDockerLogs(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(slowDeadline)
	for {
		if out, _ := c.dockerLogs(t); len(out) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s logged nothing within %v", c.name, slowDeadline)
		}
		time.Sleep(pollInterval)
	}
}

// regStopAsync runs `docker stop -t 10` in the background; the channel
// delivers its result. It does not bound the command's time itself.
func regStopAsync(name string) <-chan error {
	done := make(chan error, 1)
	go func() {
		cmd := exec.Command("docker", "stop", "-t", "10", name)
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("docker stop %s: %w: %s", name, err, bytes.TrimSpace(out))
		}
		done <- err
	}()
	return done
}

// regDrainDeletedFIFOs reads, until done delivers or limit passes, every
// logging FIFO that a dockerd process holds open inside the deleted old
// rootfs of plugin id (`docker plugin upgrade` renames the rootfs and
// deletes it; dockerd keeps writing into the pipes, which nobody reads any
// more). It returns the bytes read and done's result.
func regDrainDeletedFIFOs(t testing.TB, id string, done <-chan error, limit time.Duration) (int64, error) {
	t.Helper()
	var pipes []*os.File
	defer func() {
		for _, fh := range pipes {
			fh.Close()
		}
	}()
	procs, _ := os.ReadDir("/proc")
	for _, pe := range procs {
		if _, err := strconv.Atoi(pe.Name()); err != nil {
			continue
		}
		if comm, err := os.ReadFile("/proc/" + pe.Name() + "/comm"); err != nil || strings.TrimSpace(string(comm)) != "dockerd" {
			continue
		}
		fdDir := "/proc/" + pe.Name() + "/fd"
		ents, err := os.ReadDir(fdDir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			p := filepath.Join(fdDir, e.Name())
			target, err := os.Readlink(p)
			if err != nil || !strings.Contains(target, "/plugins/"+id+"/") || !strings.Contains(target, "/run/docker/logging/") ||
				!strings.HasSuffix(target, "(deleted)") {
				continue
			}
			fh, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
			if err != nil {
				t.Logf("open %s (%s): %v", p, target, err)
				continue
			}
			pipes = append(pipes, fh)
		}
	}
	t.Logf("draining %d pipes in the deleted rootfs of plugin %s", len(pipes), id[:12])
	var n int64
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(limit)
	for {
		select {
		case err := <-done:
			return n, err
		default:
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("still not returned %v after draining began", limit)
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
