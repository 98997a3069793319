//go:build !race

package fifo

const (
	raceEnabled       = false
	sweepStrideFactor = 1
)
