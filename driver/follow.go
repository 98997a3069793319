package driver

import (
	"sync"
	"sync/atomic"
)

// followBuffer is how many records a follower may fall behind before it is
// dropped: a container never waits for a docker logs -f.
const followBuffer = 8192

// Follower receives the records one stream stores from the moment it
// subscribed: each a JSON line as stored, with its '\n'. Records is closed
// when the stream ends (its container stopped, or the plugin shuts down)
// or when the follower fell more than 8,192 records behind (Overflowed then
// reports true). Close may be called from any goroutine, more than once.
type Follower struct {
	c          chan []byte
	h          *hub
	overflowed atomic.Bool
}

// Records returns the channel of stored records.
func (f *Follower) Records() <-chan []byte { return f.c }

// Overflowed reports whether C was closed because the follower fell
// behind, rather than because the stream ended.
func (f *Follower) Overflowed() bool { return f.overflowed.Load() }

// Close ends the subscription.
func (f *Follower) Close() { f.h.remove(f, false) }

// hub fans a stream's stored records out to its followers. Publishing
// never blocks; with no followers it costs one atomic load.
type hub struct {
	n      atomic.Int32
	mu     sync.Mutex // guards subs and closed
	subs   map[*Follower]struct{}
	closed bool
}

func (h *hub) subscribe() *Follower {
	f := &Follower{c: make(chan []byte, followBuffer), h: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(f.c)
		return f
	}
	if h.subs == nil {
		h.subs = make(map[*Follower]struct{})
	}
	h.subs[f] = struct{}{}
	h.n.Add(1)
	return f
}

// publish hands a copy of rec to every follower.
func (h *hub) publish(rec []byte) {
	if h.n.Load() == 0 {
		return
	}
	cp := append([]byte(nil), rec...)
	h.mu.Lock()
	defer h.mu.Unlock()
	for f := range h.subs {
		select {
		case f.c <- cp:
		default:
			f.overflowed.Store(true)
			h.removeLocked(f)
		}
	}
}

func (h *hub) remove(f *Follower, _ bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(f)
}

func (h *hub) removeLocked(f *Follower) {
	if _, ok := h.subs[f]; ok {
		delete(h.subs, f)
		h.n.Add(-1)
		close(f.c)
	}
}

// close ends every subscription; later subscriptions start closed.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for f := range h.subs {
		h.removeLocked(f)
	}
}

// Follow subscribes to the records stored from now on for a container
// (by full id): from its oldest stream that Docker has not stopped (a
// docker logs of a stopped container opens a second, empty stream). ok is
// false when the container has no such stream. Safe for concurrent use.
func (d *Driver) Follow(containerID string) (f *Follower, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var best *stream
	for _, s := range d.streams {
		if s == nil || s.container != containerID || s.stopRequested.Load() {
			continue
		}
		if best == nil || s.started.Before(best.started) {
			best = s
		}
	}
	if best == nil {
		return nil, false
	}
	return best.hub.subscribe(), true
}
