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
	// Lookback before the container's newest segment printed.
	type followed struct {
		newest time.Time            // when its newest segment printed began
		keys   map[string]time.Time // keys printed within Lookback of newest, and when they began
	}
	seen := map[string]*followed{}
	var since time.Time
	mark := func(cs []*Container) {
		for _, c := range cs {
			f := seen[c.ID]
			if f == nil {
				f = &followed{keys: map[string]time.Time{}}
				seen[c.ID] = f
			}
			for _, s := range c.Segments {
				f.keys[s.Key] = s.First
				if s.First.After(f.newest) {
					f.newest = s.First
				}
			}
			for key, first := range f.keys {
				if first.Before(f.newest.Add(-r.cfg.Lookback)) {
					delete(f.keys, key)
				}
			}
		}
		// List from the oldest newest segment of the containers followed
		// (find lists Lookback before it, so late segments are listed).
		since = start
		for _, f := range seen {
			if f.newest.Before(since) {
				since = f.newest
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
		if err != nil && q.Waiting != nil && len(seen) == 0 {
			q.Waiting(err)
		}
		var fresh []*Container
		for _, c := range found {
			var segs []Segment
			f := seen[c.ID]
			for _, s := range c.Segments {
				if f == nil {
					segs = append(segs, s)
				} else if _, printed := f.keys[s.Key]; !printed && !s.First.Before(f.newest.Add(-r.cfg.Lookback)) {
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
