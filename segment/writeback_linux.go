package segment

import (
	"os"
	"syscall"
)

// startWriteback asks the kernel to start writing n bytes of f from off to
// disk, without waiting for it (sync_file_range(2), SYNC_FILE_RANGE_WRITE).
// Errors are ignored: the seal's fsync(2) is what makes the file durable.
func startWriteback(f *os.File, off, n int64) {
	const syncFileRangeWrite = 0x2
	syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, f.Fd(), uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
}
