package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3logs/s3logs/internal/loggen"
)

// TestSpoolOwner: a second instance of the plugin (another alias, here
// created from the same build) enabled on the first one's spool folder
// refuses to start, with a log line that names the folder and says to set
// a different spool.source, and the first instance loses nothing of a
// container logging meanwhile. (Without the lock the second instance's
// recovery sealed and deleted the first one's live files: 411 of 800 lines
// never reached S3.)
func TestSpoolOwner(t *testing.T) {
	s := newSuite(t)
	f := newFaults(t, s)
	t.Cleanup(func() { f.restore(t) })
	spec := loggen.Spec{Mode: loggen.ModeLines, Lines: 800, Rate: 200}
	c := s.start(t, "owner", spec)

	// A plugin's rootfs content must differ for `docker plugin create` to
	// accept a second name; one marker file does it.
	second := "s3logs-e2e-second-" + s.runID + ":latest"
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", filepath.Join("..", "build", "plugin")+"/.", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the plugin build: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "rootfs", "second"), []byte(s.runID), 0o644); err != nil {
		t.Fatal(err)
	}
	docker(t, "plugin", "create", second, dir)
	t.Cleanup(func() { run(context.Background(), nil, "docker", "plugin", "rm", "--force", second) })
	docker(t, "plugin", "set", second, "spool.source="+s.spool)
	off := f.logOffset(t)
	_, errOut, err := run(t.Context(), nil, "docker", "plugin", "enable", second)
	if err == nil {
		t.Fatalf("the second instance started on a spool folder in use")
	}
	refusal := f.grepLog(t, off, "uses the spool folder", "spool.source=")
	t.Logf("MEASURE owner: docker plugin enable failed: %s; plugin said: %q", strings.TrimSpace(string(errOut)), refusal)
	if len(refusal) == 0 {
		t.Errorf("no log line from the second instance naming the spool folder and spool.source; plugin lines:\n%s", strings.Join(f.pluginLines(t, off), "\n"))
	}

	c.wait(t)
	want, _ := loggen.Expected(c.spec, c.spec.Count())
	f.waitSpoolEmpty(t, slowDeadline, c.id(t))
	_, out, _, _ := c.fetchAll(t)
	if tl := tally(out, splitLines(want)); tl.lost > 0 || tl.dups > 0 || tl.foreign > 0 {
		t.Errorf("lines through the first instance: %s", tl)
	}
}
