//go:build !linux

package segment

import "os"

// startWriteback does nothing where sync_file_range(2) is missing.
func startWriteback(f *os.File, off, n int64) {}
