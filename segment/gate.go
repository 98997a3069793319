package segment

import (
	"sync"
	"sync/atomic"
)

// spaceGate holds Appends while the spool is full under PolicyBlock. The
// janitor opens and shuts it; Close releases it for good. Its methods are
// safe for concurrent use.
type spaceGate struct {
	// shut mirrors blocked && !released for the lock-free fast path of wait:
	// an Append on an open gate costs one atomic load.
	shut atomic.Bool

	// mu guards blocked and released; cond waits on it.
	mu       sync.Mutex
	cond     sync.Cond
	blocked  bool // the janitor found the spool full under PolicyBlock
	released bool // set at Close: never wait again
}

// wait blocks while the gate is shut.
func (g *spaceGate) wait() {
	if !g.shut.Load() {
		return
	}
	g.mu.Lock()
	g.initLocked()
	for g.blocked && !g.released {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

// set shuts (b true) or opens the gate and reports whether that changed it.
func (g *spaceGate) set(b bool) (changed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.initLocked()
	if g.blocked == b {
		return false
	}
	g.blocked = b
	g.shut.Store(g.blocked && !g.released)
	if !b {
		g.cond.Broadcast()
	}
	return true
}

// release opens the gate for good (at shutdown).
func (g *spaceGate) release() {
	g.mu.Lock()
	g.initLocked()
	g.released = true
	g.shut.Store(false)
	g.cond.Broadcast()
	g.mu.Unlock()
}

// initLocked binds cond to mu on first use, so the zero spaceGate is ready.
func (g *spaceGate) initLocked() {
	if g.cond.L == nil {
		g.cond.L = &g.mu
	}
}
