package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3logs/s3logs/keys"
)

func openQuiet(t *testing.T, root string) (*Spool, error) {
	t.Helper()
	return Open(Config{Root: root, NoTicker: true, Logger: slog.New(slog.DiscardHandler)})
}

func TestSecondOpenIsLocked(t *testing.T) {
	root := filepath.Join(t.TempDir(), "segments")
	a, err := openQuiet(t, root)
	if err != nil {
		t.Fatal(err)
	}
	_, err = openQuiet(t, root)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), root) {
		t.Fatalf("second Open = %v, want ErrLocked naming %s", err, root)
	}
	// A Writer left open keeps the lock past Close: it may still write.
	w, err := a.NewWriter(WriterOptions{Container: Container{ID: testCID}, Key: func(time.Time, uint64) string { return "k" }})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := openQuiet(t, root); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while a Writer of the closed spool is open = %v, want ErrLocked", err)
	}
	w.Close(ReasonStop)
	b, err := openQuiet(t, root)
	if err != nil {
		t.Fatalf("Open after Close and the last Writer: %v", err)
	}
	b.Close()
}

// lockHelperEnv makes the test binary, run as a child, try to open a spool.
const lockHelperEnv = "SEGMENT_LOCK_HELPER_ROOT"

func TestLockHelperProcess(t *testing.T) {
	root := os.Getenv(lockHelperEnv)
	if root == "" {
		t.Skip("helper of TestOpenLockedByAnotherProcess")
	}
	sp, err := openQuiet(t, root)
	switch {
	case errors.Is(err, ErrLocked):
		fmt.Println("LOCKED")
	case err != nil:
		fmt.Println("ERROR", err)
	default:
		fmt.Println("OPENED")
		sp.Close()
	}
}

func TestOpenLockedByAnotherProcess(t *testing.T) {
	root := t.TempDir()
	child := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), lockHelperEnv+"="+root)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper: %v: %s", err, out)
		}
		return string(out)
	}
	sp, err := openQuiet(t, root)
	if err != nil {
		t.Fatal(err)
	}
	if out := child(); !strings.Contains(out, "LOCKED") {
		t.Fatalf("child opened a spool this process holds: %s", out)
	}
	sp.Close()
	if out := child(); !strings.Contains(out, "OPENED") {
		t.Fatalf("child could not open the released spool: %s", out)
	}
}

// TestFolderRemovedWhenEmptyAndUnused: once its last Writer is closed and its
// last segment removed, the janitor removes a container folder; a folder
// that a Writer holds, or that holds a segment, stays.
func TestFolderRemovedWhenEmptyAndUnused(t *testing.T) {
	h := newHarness(t, t.TempDir())
	dir := filepath.Join(h.root, testCID)
	a := h.writer(WriterOptions{})
	b := h.writer(WriterOptions{})
	a.Append(h.clock.Now(), record(1))
	a.Close(ReasonStop)
	h.spool.jan.visit()
	if _, err := os.Stat(dir); err != nil {
		t.Fatal("folder removed while a Writer holds it")
	}
	b.Close(ReasonStop)
	h.spool.jan.visit()
	if _, err := os.Stat(dir); err != nil {
		t.Fatal("folder removed while it holds a sealed segment")
	}
	var synced []string
	syncHook = func(d string) { synced = append(synced, d) }
	defer func() { syncHook = nil }()
	if err := h.seals()[0].Remove(); err != nil {
		t.Fatal(err)
	}
	h.spool.jan.visit()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("folder still there after its last segment was removed: %v", err)
	}
	if synced[len(synced)-1] != h.root {
		t.Errorf("spool root not synced after the removal: %v", synced)
	}
	// A Writer that never wrote leaves nothing behind either.
	c := h.writer(WriterOptions{})
	c.Close(ReasonStop)
	h.spool.jan.visit()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty folder of an unused Writer left: %v", err)
	}
}

// TestRemoveAfterFolderPruned: the uploader's Remove of a segment whose
// folder the janitor pruned meanwhile is not an error.
func TestRemoveAfterFolderPruned(t *testing.T) {
	h := newHarness(t, t.TempDir())
	w := h.writer(WriterOptions{})
	w.Append(h.clock.Now(), record(1))
	w.Close(ReasonStop)
	s := h.seals()[0]
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	h.spool.jan.visit()
	if err := s.Remove(); err != nil {
		t.Fatalf("second Remove after the folder went: %v", err)
	}
}

// TestNewContainerFolderIsSynced: creating a container folder syncs the
// spool root, and creating the root syncs its parent.
func TestNewContainerFolderIsSynced(t *testing.T) {
	parent := t.TempDir()
	var synced []string
	var mu sync.Mutex
	syncHook = func(d string) { mu.Lock(); synced = append(synced, d); mu.Unlock() }
	defer func() { syncHook = nil }()
	root := filepath.Join(parent, "segments")
	h := newHarness(t, root)
	w := h.writer(WriterOptions{})
	defer w.Close(ReasonStop)
	mu.Lock()
	defer mu.Unlock()
	want := []string{parent, root}
	for _, d := range want {
		found := false
		for _, s := range synced {
			found = found || s == d
		}
		if !found {
			t.Errorf("%s not synced; synced %v", d, synced)
		}
	}
}

// TestKeysStayUniqueAcrossFolderRemoval: a container whose folder is removed
// after each segment, across restarts, with every segment starting in the
// same millisecond, never gets the same key twice.
func TestKeysStayUniqueAcrossFolderRemoval(t *testing.T) {
	root := t.TempDir()
	first := time.Date(2026, 11, 27, 15, 44, 5, 123e6, time.UTC)
	seen := map[string]bool{}
	for restart := range 3 {
		sp, err := openQuiet(t, root)
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			var sealed Sealed
			w, err := sp.NewWriter(WriterOptions{
				Container: Container{ID: testCID}, Destination: Destination{Bucket: "b"},
				Key:    func(t time.Time, seq uint64) string { return keys.FilePart(t, testCID, seq) },
				OnSeal: func(s Sealed) { sealed = s },
			})
			if err != nil {
				t.Fatal(err)
			}
			w.Append(first, record(1))
			w.Close(ReasonStop)
			if seen[sealed.Meta.Key] {
				t.Fatalf("restart %d: key %s used twice", restart, sealed.Meta.Key)
			}
			seen[sealed.Meta.Key] = true
			sealed.Remove()
			sp.jan.visit()
			if _, err := os.Stat(filepath.Join(root, testCID)); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("folder not removed")
			}
		}
		sp.Close()
	}
}

// TestLegacySpoolUpgrade: a spool written by an earlier version, with a seq
// file per container folder, continues above every number it used, and its
// folders left with nothing but the seq file are removed.
func TestLegacySpoolUpgrade(t *testing.T) {
	root := t.TempDir()
	old := filepath.Join(root, testCID)
	os.MkdirAll(old, 0o700)
	os.WriteFile(filepath.Join(old, legacySeqFile), []byte("5000\n"), 0o600)
	other := filepath.Join(root, "other")
	os.MkdirAll(other, 0o700)
	os.WriteFile(filepath.Join(other, legacySeqFile), []byte("3\n"), 0o600)
	os.WriteFile(filepath.Join(other, fileName(7000)), nil, 0o600) // a sealed segment without sidecar
	h := newHarness(t, root)
	h.spool.jan.visit()
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("legacy folder with only its seq file left: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal("folder holding a segment removed")
	}
	w := h.writer(WriterOptions{})
	w.Append(h.clock.Now(), record(1))
	w.Close(ReasonStop)
	if got := h.seals()[0].Meta.Seq; got < 7001 {
		t.Fatalf("first seq after the upgrade = %d, want above 7000", got)
	}
}

// TestPruneRacesWithNewWriters: Writers of one container come and go while
// the janitor prunes and an uploader removes: no Append fails for a folder
// removed under it, no segment is lost.
func TestPruneRacesWithNewWriters(t *testing.T) {
	root := t.TempDir()
	sp, err := openQuiet(t, root)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	queue := make(chan Sealed, 1024)
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { // the uploader
		defer bg.Done()
		for s := range queue {
			if err := s.Remove(); err != nil {
				t.Error(err)
			}
		}
	}()
	go func() { // the janitor
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				sp.jan.visit()
				time.Sleep(50 * time.Microsecond)
			}
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	keysSeen := map[string]bool{}
	// Goroutines 0 and 1 share a container; 2 and 3 have one each.
	ids := []string{testCID, testCID, "b" + testCID[1:], "c" + testCID[1:]}
	for g, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				w, err := sp.NewWriter(WriterOptions{
					Container: Container{ID: id}, Destination: Destination{Bucket: "b"},
					Key: func(t time.Time, seq uint64) string { return keys.FilePart(t, id, seq) },
					OnSeal: func(s Sealed) {
						mu.Lock()
						if keysSeen[s.Meta.Key] {
							t.Errorf("key %s twice", s.Meta.Key)
						}
						keysSeen[s.Meta.Key] = true
						mu.Unlock()
						queue <- s
					},
				})
				if err != nil {
					t.Error(err)
					return
				}
				if i%3 != 0 { // some Writers never write
					if err := w.Append(time.Unix(0, 0), record(g*100+i)); err != nil {
						t.Error(err)
					}
				}
				if err := w.Close(ReasonStop); err != nil {
					t.Error(err)
				}
				// Leave the janitor a window now and then.
				time.Sleep(time.Duration(i%4) * 300 * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	close(queue)
	close(stop)
	bg.Wait()
	sp.jan.visit()
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(root, id)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("folder left after everything was removed: %v", err)
		}
	}
	if b, _ := sp.acct.sealed(); b != 0 {
		t.Fatalf("ledger holds %d bytes", b)
	}
	t.Logf("%d folder removals", sp.jan.pruned.Load())
	if sp.jan.pruned.Load() < 6 { // the last visit alone removes up to 3
		t.Fatal("the janitor never removed the folder while Writers came and went")
	}
}

// TestPruneKeepsRepairInProgress: a folder holding what a repair writes
// after moving a corrupt in-progress file to quarantine (the sidecar and
// the ".recover" file about to become the sealed segment) is not removed;
// one holding only leftovers of an interrupted removal is.
func TestPruneKeepsRepairInProgress(t *testing.T) {
	h := newHarness(t, t.TempDir())
	dir := filepath.Join(h.root, testCID)
	os.MkdirAll(dir, 0o700)
	name := fileName(9)
	os.WriteFile(filepath.Join(dir, name+MetaSuffix), []byte("{}"), 0o600)
	os.WriteFile(filepath.Join(dir, name+recoverSuffix), []byte("x"), 0o600)
	if h.spool.pruneDir(dir) {
		t.Fatal("folder with a repair in progress removed")
	}
	if _, err := os.Stat(filepath.Join(dir, name+recoverSuffix)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, name+recoverSuffix))
	if !h.spool.pruneDir(dir) {
		t.Fatal("folder holding only an orphan sidecar kept")
	}
}

// TestLocals lists a container's sealed and growing segments.
func TestLocals(t *testing.T) {
	sp, err := openQuiet(t, filepath.Join(t.TempDir(), "segments"))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	id := strings.Repeat("ab", 32)
	w, err := sp.NewWriter(WriterOptions{Container: Container{ID: id, Name: "/x"}, Destination: Destination{Bucket: "b"}, MaxSize: 1 << 20, MaxAge: time.Hour, Key: func(time.Time, uint64) string { return "k" }})
	if err != nil {
		t.Fatal(err)
	}
	if l, err := sp.Locals(id); err != nil || len(l) != 0 {
		t.Fatalf("before any record: %v %v", l, err)
	}
	now := time.Now()
	w.Append(now, []byte(`{"log":"a\n","stream":"stdout","time":"x"}`+"\n"))
	w.Flush()
	l, err := sp.Locals(id)
	if err != nil || len(l) != 1 || !l[0].Growing || l[0].Meta.Key != "k" {
		t.Fatalf("growing: %+v %v", l, err)
	}
	w.Close(ReasonStop)
	l, err = sp.Locals(id)
	if err != nil || len(l) != 1 || l[0].Growing || l[0].Path != l[0].SealedPath() {
		t.Fatalf("sealed: %+v %v", l, err)
	}
	if l, _ := sp.Locals("../etc"); l != nil {
		t.Fatal("bad id listed")
	}
}
