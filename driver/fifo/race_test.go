//go:build race

package fifo

// Under the race detector TestResyncSweep tests every fourth cut (and still
// every byte near a header), about 600,000 cut points (short frames are all near a header): the full million takes
// about 17 s there, too long next to the other packages on a 2-core machine.
// Without the race detector it tests them all, in about a second.
const (
	raceEnabled       = true
	sweepStrideFactor = 4
)
