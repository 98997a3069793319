// Package benchutil holds measurements shared by the project's benchmarks.
package benchutil

import (
	"runtime"
	"syscall"
	"time"
)

// CPUTime returns the CPU time (user and system) of the process so far.
// Benchmarks divide input bytes by it as well as by wall time, because the
// machine may be shared: CPU time is what a core spends, whatever else runs.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Mallocs returns the number of heap allocations so far.
func Mallocs() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Mallocs
}
