package driver

import (
	"bytes"
	"time"
)

// deduper recognises, at the head of a re-attached FIFO, the records that
// the repaired segment already stored: the process died after storing them
// and before consuming their frames. Those records are a suffix of the
// segment's tail and a prefix of the FIFO. It holds the FIFO's first
// records until they either complete such a match (they are dropped) or
// cannot (they are stored).
type deduper struct {
	tail    [][]byte // the repaired segment's last records, oldest first
	cands   []int    // per live candidate: the tail index expected next
	started bool
	held    [][]byte
	heldT   []time.Time
	dropped int
	over    bool
}

// offer takes the next record of the FIFO; store receives the records to
// store, in order, once they are known not to be duplicates.
func (d *deduper) offer(rec []byte, t time.Time, store func(time.Time, []byte)) {
	if d.over {
		store(t, rec)
		return
	}
	var next []int
	if !d.started {
		d.started = true
		for j, r := range d.tail {
			if bytes.Equal(r, rec) {
				next = append(next, j+1)
			}
		}
	} else {
		for _, c := range d.cands {
			if c < len(d.tail) && bytes.Equal(d.tail[c], rec) {
				next = append(next, c+1)
			}
		}
	}
	d.cands = next
	d.held = append(d.held, bytes.Clone(rec))
	d.heldT = append(d.heldT, t)
	for _, c := range next {
		if c == len(d.tail) {
			// The held records repeat the end of the tail: duplicates.
			d.dropped = len(d.held)
			d.held, d.heldT, d.over = nil, nil, true
			return
		}
	}
	if len(next) == 0 {
		d.flush(store)
	}
}

// flush stores every held record and ends the deduplication.
func (d *deduper) flush(store func(time.Time, []byte)) {
	for i, r := range d.held {
		store(d.heldT[i], r)
	}
	d.held, d.heldT, d.over = nil, nil, true
}

// done reports whether the deduplication is decided.
func (d *deduper) done() bool { return d.over }
