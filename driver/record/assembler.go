package record

import (
	"time"

	"github.com/s3logs/s3logs/driver/logentry"
)

// MaxRecordSize is the largest Line, in bytes, of a Record.
const MaxRecordSize = 1 << 20

// maxSources bounds the per-source state (Docker only uses "stdout" and
// "stderr"); an entry for a further source evicts the least recently used
// one, emitting its pending bytes first.
const maxSources = 8

// Record is one log line as the container wrote it, or a piece of it (see the
// package documentation).
type Record struct {
	// Line is the line without its newline. It is only valid until the emit
	// callback returns: the Assembler reuses the memory.
	Line []byte
	// Newline reports whether the container wrote a newline after Line.
	Newline bool
	// Source is the stream, "stdout" or "stderr".
	Source string
	// Time is the daemon's timestamp of the line's first chunk.
	Time time.Time
}

// chain is the pending partial line of one source.
type chain struct {
	source  string
	active  bool   // a chain is open (buf may still be empty)
	hasMeta bool   // the chain came with partial metadata
	id      string // metadata id
	next    int32  // expected next ordinal
	time    int64  // first chunk's TimeNano
	buf     []byte // pending bytes, at most MaxRecordSize
	used    uint64 // last use, for eviction
}

// Assembler reassembles partial entries into records. Use one Assembler per
// FIFO. It is not safe for concurrent use.
type Assembler struct {
	chains []*chain
	clock  uint64
	rec    Record
}

// NewAssembler returns an empty Assembler. It holds at most MaxRecordSize
// pending bytes per source.
func NewAssembler() *Assembler {
	return &Assembler{}
}

// Add feeds one entry and calls emit for every record it completes (zero,
// one or more). The *Record passed to emit, and its Line, are only valid
// until emit returns. Add does not keep e or its Line. If emit returns an
// error, Add returns it at once; the rest of that entry is dropped and the
// Assembler remains usable.
func (a *Assembler) Add(e *logentry.LogEntry, emit func(*Record) error) error {
	meta := e.PartialLogMetadata
	if !e.Partial && meta == nil {
		c := a.find(e.Source)
		if c == nil || !c.active {
			return a.emitSplit(e.Source, e.TimeNano, e.Line, emit)
		}
		if c.hasMeta {
			if err := a.flushChain(c, emit); err != nil {
				return err
			}
			return a.emitSplit(e.Source, e.TimeNano, e.Line, emit)
		}
		// Old daemon: a non-partial entry ends the metadata-less chain.
		if err := a.appendChain(c, e.Line, emit); err != nil {
			return err
		}
		return a.endChain(c, emit)
	}

	c, err := a.get(e.Source, emit)
	if err != nil {
		return err
	}
	if meta == nil {
		if c.active && c.hasMeta {
			if err := a.flushChain(c, emit); err != nil {
				return err
			}
		}
		if !c.active {
			c.start(e.TimeNano, false, "")
		}
		return a.appendChain(c, e.Line, emit)
	}
	if c.active && (!c.hasMeta || c.id != meta.Id || c.next != meta.Ordinal) {
		if err := a.flushChain(c, emit); err != nil {
			return err
		}
	}
	if !c.active {
		c.start(e.TimeNano, true, meta.Id)
	}
	c.next = meta.Ordinal + 1
	if err := a.appendChain(c, e.Line, emit); err != nil {
		return err
	}
	if meta.Last {
		return a.endChain(c, emit)
	}
	return nil
}

// Flush emits every pending chain as a record with Newline false, for the end
// of the stream. The Assembler is empty and reusable afterwards.
func (a *Assembler) Flush(emit func(*Record) error) error {
	for _, c := range a.chains {
		if c.active {
			if err := a.flushChain(c, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

// Pending reports whether a partial line is being assembled: some entries
// were taken whose record has not been emitted whole yet.
func (a *Assembler) Pending() bool {
	for _, c := range a.chains {
		if c.active {
			return true
		}
	}
	return false
}

// EmitPending emits the bytes of every pending chain so far as a record
// with Newline false and keeps the chain open: its next pieces continue
// where these stop, so concatenating the records still gives the line
// exactly. A stream calls it when a chain has waited too long for its last
// piece, so that a crash cannot lose the pieces already taken.
func (a *Assembler) EmitPending(emit func(*Record) error) error {
	for _, c := range a.chains {
		if !c.active || len(c.buf) == 0 {
			continue
		}
		line := c.buf
		c.buf = c.buf[:0]
		if err := a.emit(c.source, c.time, line, false, emit); err != nil {
			return err
		}
	}
	return nil
}

// Shrink drops the buffers of sources with no pending line that grew
// beyond 64 KiB, so that one long line does not pin up to MaxRecordSize
// per source for the rest of the stream. Call it now and then, not per
// entry.
func (a *Assembler) Shrink() {
	for _, c := range a.chains {
		if !c.active && cap(c.buf) > shrinkAbove {
			c.buf = nil
		}
	}
}

// shrinkAbove is the buffer capacity beyond which Shrink drops an idle
// buffer.
const shrinkAbove = 64 << 10

func (c *chain) start(t int64, hasMeta bool, id string) {
	c.active = true
	c.hasMeta = hasMeta
	c.id = id
	c.time = t
	c.buf = c.buf[:0]
}

func (c *chain) reset() {
	c.active = false
	c.hasMeta = false
	c.id = ""
	c.buf = c.buf[:0]
}

// find returns the state of source, or nil.
func (a *Assembler) find(source string) *chain {
	for _, c := range a.chains {
		if c.source == source {
			return c
		}
	}
	return nil
}

// get returns the state of source, creating it (and evicting another source
// if the table is full).
func (a *Assembler) get(source string, emit func(*Record) error) (*chain, error) {
	a.clock++
	if c := a.find(source); c != nil {
		c.used = a.clock
		return c, nil
	}
	if len(a.chains) < maxSources {
		c := &chain{source: source, used: a.clock}
		a.chains = append(a.chains, c)
		return c, nil
	}
	victim := a.chains[0]
	for _, c := range a.chains[1:] {
		if !c.active && victim.active || c.active == victim.active && c.used < victim.used {
			victim = c
		}
	}
	if victim.active {
		if err := a.flushChain(victim, emit); err != nil {
			return nil, err
		}
	}
	victim.source = source
	victim.used = a.clock
	return victim, nil
}

// appendChain appends data to the chain, emitting full MaxRecordSize records
// (Newline false) as needed.
func (a *Assembler) appendChain(c *chain, data []byte, emit func(*Record) error) error {
	for len(data) > 0 {
		room := MaxRecordSize - len(c.buf)
		if room == 0 {
			line := c.buf
			c.buf = c.buf[:0]
			if err := a.emit(c.source, c.time, line, false, emit); err != nil {
				return err
			}
			continue
		}
		n := min(room, len(data))
		c.grow(n)
		c.buf = append(c.buf, data[:n]...)
		data = data[n:]
	}
	return nil
}

// grow makes room for n more bytes without letting capacity exceed
// MaxRecordSize.
func (c *chain) grow(n int) {
	need := len(c.buf) + n
	if need <= cap(c.buf) {
		return
	}
	newCap := min(max(2*cap(c.buf), need, 4096), MaxRecordSize)
	buf := make([]byte, len(c.buf), newCap)
	copy(buf, c.buf)
	c.buf = buf
}

// flushChain emits the pending bytes with Newline false (if any) and closes
// the chain.
func (a *Assembler) flushChain(c *chain, emit func(*Record) error) error {
	line, t := c.buf, c.time
	c.reset()
	if len(line) == 0 {
		return nil
	}
	return a.emit(c.source, t, line, false, emit)
}

// endChain emits the pending bytes with Newline true and closes the chain.
func (a *Assembler) endChain(c *chain, emit func(*Record) error) error {
	line, t := c.buf, c.time
	c.reset()
	return a.emit(c.source, t, line, true, emit)
}

// emitSplit emits a complete line without copying it, in MaxRecordSize
// pieces if it is longer.
func (a *Assembler) emitSplit(source string, t int64, line []byte, emit func(*Record) error) error {
	for len(line) > MaxRecordSize {
		if err := a.emit(source, t, line[:MaxRecordSize], false, emit); err != nil {
			return err
		}
		line = line[MaxRecordSize:]
	}
	return a.emit(source, t, line, true, emit)
}

func (a *Assembler) emit(source string, t int64, line []byte, newline bool, emit func(*Record) error) error {
	a.rec = Record{Line: line, Newline: newline, Source: source, Time: time.Unix(0, t)}
	err := emit(&a.rec)
	a.rec = Record{}
	return err
}
