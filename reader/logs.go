package reader

import (
	"context"
	"errors"
	"time"
)

// DefaultPoll is how often Logs looks for new objects while following.
const DefaultPoll = 2 * time.Second

// Query says what Logs reads.
type Query struct {
	// Selectors name the containers: a name or an id prefix each; none
	// selects every container.
	Selectors []string
	// Window bounds the records by time.
	Window Window
	// Tail, when >= 0, gives only the last Tail records of each container
	// (before following).
	Tail int
	// Follow keeps polling for new objects after the records found at the
	// start, every Poll (default DefaultPoll), until ctx is done or the
	// window's Until has passed by Lookback. New objects appear as the
	// plugin seals segments (segment-age, segment-size, container stop).
	// An object that appears after a newer one of its container is
	// printed when it appears, out of time order, if it began at most
	// Lookback before the newest one printed.
	Follow bool
	Poll   time.Duration
	// Stats, if set, counts progress.
	Stats *Stats
	// Waiting, if set, is called while following when selectors have
	// matched nothing yet (with the *NotFoundError); Logs keeps polling.
	Waiting func(error)
	// Caught, if set, is called while following each time Logs has given
	// everything found so far and waits for new objects (a printer flushes
	// its output there).
	Caught func()
}

// Logs finds the containers of q and calls fn with their records in time
// order, then follows them if q.Follow. Without Follow, a selector that
// matches nothing makes Logs fail with a *NotFoundError before anything is
// read. fn's arguments are valid only until it returns.
func (r *Reader) Logs(ctx context.Context, q Query, fn func(*Record) error) error {
	start := r.cfg.Now()
	cs, err := r.Find(ctx, q.Selectors, q.Window)
	var nf *NotFoundError
	if err != nil && (!q.Follow || !errors.As(err, &nf)) {
		return err
	}
	if err != nil && q.Waiting != nil {
		q.Waiting(err)
	}
	if err := r.Stream(ctx, cs, q.Window, q.Tail, q.Stats, fn); err != nil {
		return err
	}
	if !q.Follow {
		return nil
	}
	caught := func() {
		if q.Caught != nil {
			q.Caught()
		}
	}
	caught()
	poll := q.Poll
	if poll <= 0 {
		poll = DefaultPoll
	}
	// A poll streams the segments it has not listed before. They are
	// usually each container's newest, but not always: the uploader sends
	// a stopped container's last segment ahead of a backlog, and its
	// workers may finish a small segment before a big earlier one, so an
	// older segment can appear after a newer one. It is streamed when it
	// appears (out of time order) rather than never, if it began at most
	// Lookback before the container's newest segment printed. known holds,
	// per container, the keys listed so far within that span (and when
	// they began); last, its newest segment's start.
	known := map[string]map[string]time.Time{}
	last := map[string]time.Time{}
	var since time.Time
	mark := func(cs []*Container) {
		for _, c := range cs {
			k := known[c.ID]
			if k == nil {
				k = map[string]time.Time{}
				known[c.ID] = k
			}
			for _, s := range c.Segments {
				k[s.Key] = s.First
				if s.First.After(last[c.ID]) {
					last[c.ID] = s.First
				}
			}
			for key, first := range k {
				if first.Before(last[c.ID].Add(-r.cfg.Lookback)) {
					delete(k, key)
				}
			}
		}
		// List from the oldest newest segment of the containers followed
		// (find lists Lookback before it, so late segments are listed).
		since = start
		for _, first := range last {
			if first.Before(since) {
				since = first
			}
		}
	}
	mark(cs)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if !q.Window.Until.IsZero() && r.cfg.Now().After(q.Window.Until.Add(r.cfg.Lookback)) {
			return nil
		}
		listFrom := since
		if listFrom.Before(q.Window.Since) {
			listFrom = q.Window.Since
		}
		found, err := r.find(ctx, q.Selectors, q.Window, listFrom)
		if err != nil && !errors.As(err, &nf) {
			return err
		}
		if err != nil && q.Waiting != nil && len(last) == 0 {
			q.Waiting(err)
		}
		var fresh []*Container
		for _, c := range found {
			var segs []Segment
			newest, seen := last[c.ID]
			for _, s := range c.Segments {
				if _, ok := known[c.ID][s.Key]; !ok && (!seen || !s.First.Before(newest.Add(-r.cfg.Lookback))) {
					segs = append(segs, s)
				}
			}
			if len(segs) > 0 {
				cc := *c
				cc.Segments = segs
				fresh = append(fresh, &cc)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		if err := r.Stream(ctx, fresh, q.Window, -1, q.Stats, fn); err != nil {
			return err
		}
		mark(fresh)
		caught()
	}
}
