package segment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile is the file in the spool root that the owning Spool holds an
// exclusive flock(2) on.
const lockFile = ".lock"

// ErrLocked means another Spool, in this process or another, has the spool
// folder open. Open's error wraps it and names the folder.
var ErrLocked = errors.New("segment: spool folder in use by another spool")

// lockRoot takes an exclusive, non-blocking flock on root/.lock. The lock
// belongs to the open file description: it holds until the file is closed
// or the process dies, and a second open of the file conflicts even within
// one process.
func lockRoot(root string) (*os.File, error) {
	path := filepath.Join(root, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("segment: lock spool: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, root)
		}
		return nil, fmt.Errorf("segment: lock spool %s: %w", path, err)
	}
	return f, nil
}

// ErrLockLost means the Spool no longer holds the lock on its folder: the
// lock was released, or Root/.lock was removed or replaced, so that another
// Spool could open the folder. CheckLock's errors wrap it.
var ErrLockLost = errors.New("segment: spool lock not held")

// checkLock reports whether f, the file the lock was taken on, is still
// open and still the file at path.
func checkLock(f *os.File, path string) error {
	if f == nil {
		return fmt.Errorf("%w: released", ErrLockLost)
	}
	held, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLockLost, err)
	}
	cur, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLockLost, err)
	}
	if !os.SameFile(held, cur) {
		return fmt.Errorf("%w: %s was replaced by another file", ErrLockLost, path)
	}
	return nil
}
