package reader

import (
	"container/heap"
	"context"
	"sync"
)

// Stream calls fn with the records of cs that lie in w, in time order
// across containers (each container's records in stored order), until
// all are read, fn returns an error, or ctx is done. With tail >= 0 only
// the last tail records of each container are given; they are found by
// reading its segments newest first, so only the segments needed are
// fetched. Records, and the slices in them, are valid only until fn
// returns. Up to Config.Concurrency segments are fetched and decoded at
// once (at least two per container), each streaming with bounded memory.
// stats may be nil. Stream waits for every goroutine it started.
func (r *Reader) Stream(ctx context.Context, cs []*Container, w Window, tail int, stats *Stats, fn func(*Record) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if stats != nil {
		for _, c := range cs {
			stats.ObjectsTotal.Add(int64(len(c.Segments)))
		}
	}
	depth := max(2, r.cfg.Concurrency/max(1, len(cs)))
	var h streamHeap
	for i, c := range cs {
		var s *cstream
		if tail >= 0 {
			recs, err := r.tail(ctx, c, w, tail, stats)
			if err != nil {
				return err
			}
			s = &cstream{order: i, fixed: recs}
		} else {
			s = &cstream{order: i, c: c, segs: c.Segments, depth: depth, w: w, stats: stats, wg: &wg}
		}
		ok, err := s.advance(ctx)
		if err != nil {
			return err
		}
		if ok {
			h = append(h, s)
		}
	}
	heap.Init(&h)
	for len(h) > 0 {
		s := h[0]
		if err := fn(s.head()); err != nil {
			return err
		}
		if stats != nil {
			stats.Records.Add(1)
		}
		ok, err := s.advance(ctx)
		if err != nil {
			return err
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	return nil
}

// tail returns the last n records of c in w, reading segments newest
// first until it has n.
func (r *Reader) tail(ctx context.Context, c *Container, w Window, n int, stats *Stats) ([]*Record, error) {
	var chunks [][]*Record // newest segment first
	total := 0
	for i := len(c.Segments) - 1; i >= 0 && total < n; i-- {
		var recs []*Record
		send := func(b *batch) bool {
			if b.err == nil {
				for k := range b.recs {
					recs = append(recs, &b.recs[k])
				}
			}
			return true
		}
		if err := decodeTo(ctx, c, c.Segments[i], w, stats, send); err != nil {
			return nil, err
		}
		if len(recs) > n-total {
			recs = recs[len(recs)-(n-total):]
		}
		total += len(recs)
		chunks = append(chunks, recs)
	}
	out := make([]*Record, 0, total)
	for i := len(chunks) - 1; i >= 0; i-- {
		out = append(out, chunks[i]...)
	}
	return out, nil
}

// cstream is one container's records: decoded ahead segment by segment,
// or a fixed list (tail).
type cstream struct {
	order int // position of the container, for stable ties
	fixed []*Record
	pos   int

	c       *Container
	segs    []Segment
	depth   int
	w       Window
	stats   *Stats
	wg      *sync.WaitGroup
	pending []chan *batch // decoders in segment order
	cur     *batch
	cpos    int
}

// head returns the current record; valid after advance returned true.
func (s *cstream) head() *Record {
	if s.fixed != nil {
		return s.fixed[s.pos-1]
	}
	return &s.cur.recs[s.cpos-1]
}

// advance moves to the next record; false at the end.
func (s *cstream) advance(ctx context.Context) (bool, error) {
	if s.fixed != nil {
		if s.pos >= len(s.fixed) {
			return false, nil
		}
		s.pos++
		return true, nil
	}
	for {
		if s.cur != nil && s.cpos < len(s.cur.recs) {
			s.cpos++
			return true, nil
		}
		if s.cur != nil {
			s.cur.release()
		}
		s.cur, s.cpos = nil, 0
		for len(s.pending) < s.depth && len(s.segs) > 0 {
			ch := make(chan *batch, 2)
			seg := s.segs[0]
			s.segs = s.segs[1:]
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				decode(ctx, s.c, seg, s.w, s.stats, ch)
			}()
			s.pending = append(s.pending, ch)
		}
		if len(s.pending) == 0 {
			return false, nil
		}
		select {
		case b, ok := <-s.pending[0]:
			if !ok {
				s.pending = s.pending[1:]
				continue
			}
			if b.err != nil {
				return false, b.err
			}
			s.cur = b
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// streamHeap orders container streams by their head record's time.
type streamHeap []*cstream

func (h streamHeap) Len() int { return len(h) }
func (h streamHeap) Less(i, j int) bool {
	a, b := h[i].head().Time, h[j].head().Time
	if !a.Equal(b) {
		return a.Before(b)
	}
	return h[i].order < h[j].order
}
func (h streamHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *streamHeap) Push(x any)   { *h = append(*h, x.(*cstream)) }
func (h *streamHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
