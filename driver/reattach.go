package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/s3logs/s3logs/driver/logopt"
)

// SavedContainers returns the container ids of the streams saved for
// Reattach, so that their segments can be repaired first at start-up.
func (d *Driver) SavedContainers() []string {
	saved, _ := d.loadSaved()
	ids := make([]string, 0, len(saved))
	for _, s := range saved {
		ids = append(ids, s.ContainerID)
	}
	return ids
}

// loadSaved reads every saved stream; unreadable files are removed and
// reported.
func (d *Driver) loadSaved() ([]savedStream, error) {
	entries, err := os.ReadDir(d.cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("driver: reattach: %w", err)
	}
	var out []savedStream
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(d.cfg.StateDir, e.Name())
		b, err := os.ReadFile(path)
		var saved savedStream
		if err == nil {
			err = json.Unmarshal(b, &saved)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("driver: saved stream %s: %w", path, err))
			os.Remove(path)
			continue
		}
		out = append(out, saved)
	}
	return out, errors.Join(errs...)
}

// Reattach re-opens the FIFOs saved by earlier StartLogging calls whose
// streams did not reach EOF (the plugin was killed or upgraded). Saved FIFOs
// that no longer exist are forgotten. tail, when not nil, returns the last
// records that the repaired segment of a container stored, so that the
// records its FIFO repeats are not stored twice.
//
// No FIFO is left unread: a re-attach that fails (say the FIFO cannot be
// opened) is retried with backoff until it works, the FIFO disappears or
// Shutdown; saved options that no longer validate (a stricter version) are
// replaced by their defaults, and a stream without a usable bucket is read
// and counted but not stored. Each such case is logged at error level. It
// returns how many streams it resumed at once.
func (d *Driver) Reattach(tail func(containerID string) [][]byte) (int, error) {
	saved, err := d.loadSaved()
	n := 0
	errs := []error{err}
	for _, sv := range saved {
		if d.nothingLeft(sv.File) {
			d.log.Info("saved stream's FIFO is gone", "file", sv.File)
			d.forget(sv.File)
			continue
		}
		if err := d.checkFile(sv.File); err != nil {
			errs = append(errs, fmt.Errorf("driver: reattach %s: %w", sv.File, err))
			d.forget(sv.File)
			continue
		}
		opts := d.savedOptions(sv)
		var t [][]byte
		if tail != nil {
			t = tail(sv.ContainerID)
		}
		err := d.start(sv, opts, false, t)
		if err != nil && opts != nil && !errors.Is(err, errOpenFIFO) && !errors.Is(err, ErrShutdown) && !errors.Is(err, ErrDuplicate) {
			// The FIFO opens but its stream cannot be stored (say the
			// saved container id no longer passes the spool's checks):
			// read it and count, so the container never blocks.
			d.log.Error("re-attached FIFO cannot be stored: its records are counted but NOT stored", "container", shortID(sv.ContainerID), "file", sv.File, "err", err)
			opts = nil
			err = d.start(sv, nil, false, nil)
		}
		if err != nil {
			if errors.Is(err, ErrShutdown) || errors.Is(err, ErrDuplicate) {
				continue
			}
			d.log.Error("re-attaching to FIFO failed; retrying", "container", shortID(sv.ContainerID), "file", sv.File, "err", err)
			d.retryReattach(sv, opts, t)
			continue
		}
		d.log.Info("re-attached to FIFO", "container", shortID(sv.ContainerID), "file", sv.File, "dedup_tail", len(t))
		n++
	}
	return n, errors.Join(errs...)
}

// nothingLeft reports whether a saved stream has nothing left to read: its
// FIFO is gone and its journal holds no byte to store.
func (d *Driver) nothingLeft(file string) bool {
	_, err := os.Stat(file)
	return errors.Is(err, os.ErrNotExist) && !journalPending(d.journalPath(file))
}

// savedOptions parses a saved stream's log-opts. Options that no longer
// validate fall back to their defaults; nil means even that failed (no
// usable bucket), and the stream is then read and counted only.
func (d *Driver) savedOptions(sv savedStream) *logopt.Options {
	opts, err := logopt.Parse(sv.Config)
	if err == nil {
		if perr := d.cfg.AllowedEndpoints.Check(opts); perr != nil {
			d.log.Error("saved stream's endpoint is no longer allowed (ALLOWED_ENDPOINTS): the FIFO is read so the container never blocks, and its records are counted but NOT stored",
				"container", shortID(sv.ContainerID), "file", sv.File, "err", perr)
			return nil
		}
		return opts
	}
	kept := make(map[string]string, len(sv.Config))
	for k, v := range sv.Config {
		kept[k] = v
	}
	for _, e := range flatten(err) {
		var oe *logopt.Error
		if errors.As(e, &oe) {
			delete(kept, oe.Option)
		}
	}
	opts, err2 := logopt.Parse(kept)
	if err2 != nil {
		d.log.Error("saved log-opts no longer validate and no usable destination is left: the FIFO is read so the container never blocks, and its records are counted but NOT stored",
			"container", shortID(sv.ContainerID), "file", sv.File, "err", err)
		return nil
	}
	d.log.Error("saved log-opts no longer validate: storing with the default for each refused option",
		"container", shortID(sv.ContainerID), "file", sv.File, "err", err)
	return opts
}

// flatten lists the errors joined in err (or err itself).
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Bounds of the re-attach retry backoff.
const (
	retryFirst = 100 * time.Millisecond
	retryMax   = 30 * time.Second
)

// retryReattach retries a failed re-attach in its own goroutine, with
// exponential backoff, until it works, the FIFO is gone or Shutdown.
func (d *Driver) retryReattach(sv savedStream, opts *logopt.Options, tail [][]byte) {
	d.mu.Lock()
	if d.shut {
		d.mu.Unlock()
		return
	}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		delay := retryFirst
		for attempt := 1; ; attempt++ {
			select {
			case <-d.stop:
				return
			case <-time.After(delay):
			}
			if d.nothingLeft(sv.File) {
				d.log.Error("gave up re-attaching: the FIFO is gone", "container", shortID(sv.ContainerID), "file", sv.File, "attempts", attempt)
				d.forget(sv.File)
				return
			}
			err := d.start(sv, opts, false, tail)
			if err == nil {
				d.log.Info("re-attached to FIFO", "container", shortID(sv.ContainerID), "file", sv.File, "attempts", attempt)
				return
			}
			if errors.Is(err, ErrShutdown) || errors.Is(err, ErrDuplicate) {
				return
			}
			delay = min(2*delay, retryMax)
			d.log.Error("re-attaching to FIFO failed; retrying", "container", shortID(sv.ContainerID), "file", sv.File,
				"attempts", attempt, "retry_in", delay, "err", err)
		}
	}()
}
