package driver

import (
	"sync"
	"sync/atomic"
	"time"
)

// storeJob is a batch of encoded records, one FIFO read's worth, on its
// way to the segment writer.
type storeJob struct {
	buf   []byte      // the records, each a JSON line with its '\n'
	ends  []int       // end of each record in buf
	times []time.Time // each record's time
	// marks[k] is how far the FIFO may be consumed once record k is in a
	// sealed (durable) segment; commitTo how far once the whole job is
	// flushed; -1: nothing (a deduplication is undecided).
	marks    []int64
	commitTo int64
}

func (j *storeJob) reset() {
	j.buf, j.ends, j.times, j.marks = j.buf[:0], j.ends[:0], j.times[:0], j.marks[:0]
	j.commitTo = -1
}

// storer appends a stream's records to its segment writer and flushes it
// on a goroutine of its own, one job behind the reader: while it
// compresses what one FIFO read held, the stream decodes and encodes the
// next. It reports, in durable, how far the FIFO may be consumed: the
// stream commits no byte before the records it carried were flushed (or
// sealed), so a crash still leaves every unstored byte in the pipe.
//
// Lifetime: start launches the goroutine; stop, called by the stream's
// reader goroutine at its end, waits for it. Only the reader goroutine
// calls submit, sync and stop.
type storer struct {
	s       *stream
	jobs    chan *storeJob
	free    chan *storeJob
	durable atomic.Int64 // FIFO offset; -1 before anything

	mu        sync.Mutex // guards submitted, completed
	cond      *sync.Cond
	submitted uint64
	completed uint64

	done chan struct{}
	// counts the writer goroutine gathers (records not stored), published
	// once per job.
	pend streamCounts
}

func newStorer(s *stream) *storer {
	st := &storer{s: s, jobs: make(chan *storeJob, 1), free: make(chan *storeJob, 3), done: make(chan struct{})}
	st.cond = sync.NewCond(&st.mu)
	st.durable.Store(-1)
	for range 3 {
		st.free <- &storeJob{commitTo: -1}
	}
	return st
}

func (st *storer) start() { go st.loop() }

// loop is the writer goroutine: it ends when jobs is closed.
func (st *storer) loop() {
	defer close(st.done)
	s := st.s
	for j := range st.jobs {
		seals := s.seals.Load()
		start := 0
		for k, end := range j.ends {
			s.append(j.times[k], j.buf[start:end], &st.pend)
			start = end
			if n := s.seals.Load(); n != seals && j.marks[k] >= 0 && s.w != nil {
				// A segment was sealed (by this record's size, or by age
				// on the spool's ticker): flushed, every record so far is
				// durable, whichever segment it is in, and its frames may
				// go now rather than be repeated by the FIFO after a crash.
				seals = n
				if err := s.w.Flush(); err == nil {
					st.durable.Store(j.marks[k])
				}
			}
		}
		if s.w != nil && len(j.ends) > 0 {
			if err := s.w.Flush(); err != nil {
				s.log.Error("flushing segment", "err", err)
			}
		}
		if j.commitTo >= 0 {
			st.durable.Store(j.commitTo)
		}
		if s.sink != nil && st.pend != (streamCounts{}) {
			s.sink.add(&st.pend)
			st.pend = streamCounts{}
		}
		j.reset()
		st.free <- j
		st.mu.Lock()
		st.completed++
		st.cond.Broadcast()
		st.mu.Unlock()
	}
}

// submit hands j to the writer goroutine, waiting while another job is
// queued (so at most one job is queued and one being written), and
// returns an empty job for the next records.
func (st *storer) submit(j *storeJob) *storeJob {
	st.mu.Lock()
	st.submitted++
	st.mu.Unlock()
	st.jobs <- j
	return <-st.free
}

// sync waits until every submitted job is written and flushed.
func (st *storer) sync() {
	st.mu.Lock()
	for st.completed != st.submitted {
		st.cond.Wait()
	}
	st.mu.Unlock()
}

// release drops the buffers of the jobs not in use, cur among them, so an
// idle stream keeps no batch memory. Call it after sync.
func (st *storer) release(cur *storeJob) {
	drop := func(j *storeJob) { *j = storeJob{commitTo: -1} }
	drop(cur)
	for range len(st.free) {
		j := <-st.free
		drop(j)
		st.free <- j
	}
}

// stop ends the writer goroutine after the submitted jobs.
func (st *storer) stop() {
	close(st.jobs)
	<-st.done
}
