package segment

import (
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// maxIdleEncoders is how many idle encoders of each level are kept for
// reuse. An encoder holds 1 to 35 MiB depending on its level.
const maxIdleEncoders = 4

// encoderPool lends zstd encoders to Writers: a few idle encoders per level
// are kept for reuse; the rest are left to the garbage collector, so memory
// follows the number of active streams, not the peak. Its methods are safe
// for concurrent use.
type encoderPool struct {
	// mu guards idle, freed and lastFree.
	mu       sync.Mutex
	idle     map[zstd.EncoderLevel][]*zstd.Encoder
	freed    int       // encoders dropped since the last returnMemory
	lastFree time.Time // last returnMemory that freed memory
}

// get returns an idle encoder of the given level, reset to write to w, or a
// new one.
func (p *encoderPool) get(level zstd.EncoderLevel, w *countingWriter) (*zstd.Encoder, error) {
	p.mu.Lock()
	idle := p.idle[level]
	if n := len(idle); n > 0 {
		e := idle[n-1]
		idle[n-1] = nil
		p.idle[level] = idle[:n-1]
		p.mu.Unlock()
		e.Reset(w)
		return e, nil
	}
	p.mu.Unlock()
	return newEncoder(level, w)
}

// put takes back an encoder (already closed): it is kept for reuse if fewer
// than maxIdleEncoders of its level are idle, else dropped.
func (p *encoderPool) put(level zstd.EncoderLevel, e *zstd.Encoder) {
	e.Reset(nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle[level]) < maxIdleEncoders {
		if p.idle == nil {
			p.idle = make(map[zstd.EncoderLevel][]*zstd.Encoder)
		}
		p.idle[level] = append(p.idle[level], e)
		return
	}
	p.freed++
}

// returnMemory hands the memory of dropped encoders back to the operating
// system once enough of them piled up, at most every 10 s: an idle plugin
// allocates too little for the garbage collector to run on its own, so its
// RSS would otherwise stay at the peak of its busiest moment.
func (p *encoderPool) returnMemory(now time.Time) {
	p.mu.Lock()
	due := p.freed >= 8 && now.Sub(p.lastFree) >= 10*time.Second
	if due {
		p.freed = 0
		p.lastFree = now
	}
	p.mu.Unlock()
	if due {
		debug.FreeOSMemory()
	}
}

// newEncoder builds a synchronous encoder with the spool's window and CRCs.
func newEncoder(level zstd.EncoderLevel, w *countingWriter) (*zstd.Encoder, error) {
	e, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(DefaultWindowSize),
		zstd.WithEncoderCRC(true),
		zstd.WithLowerEncoderMem(true),
	)
	if err != nil {
		return nil, fmt.Errorf("segment: zstd encoder: %w", err)
	}
	return e, nil
}
