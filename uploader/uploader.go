package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/s3logs/s3logs/s3client"
	"github.com/s3logs/s3logs/segment"
)

// Errors returned by this package; compare with errors.Is.
var (
	// ErrConfig means a Config field is invalid.
	ErrConfig = errors.New("uploader: invalid config")
	// ErrStarted is returned by a second call to Start.
	ErrStarted = errors.New("uploader: already started")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("uploader: closed")
)

// Defaults of the Config fields.
const (
	DefaultWorkers        = 4
	DefaultBackoffBase    = time.Second
	DefaultBackoffCap     = 5 * time.Minute
	DefaultAttemptTimeout = 30 * time.Second
	DefaultMinThroughput  = 1 << 20 // bytes per second
)

// Config configures an Uploader. The zero value of every field but Root
// selects its default.
type Config struct {
	// Root is the spool root, as given to segment.ScanSealed. Required.
	Root string
	// Workers is the number of concurrent uploads. Default 4.
	Workers int
	// Logger receives the Uploader's logs. Default: discard.
	Logger *slog.Logger
	// BackoffBase is the first retry delay limit: the n-th consecutive
	// failure of a destination (n from 0) waits a uniformly random delay in
	// [0, min(BackoffCap, BackoffBase*2^n)] (full jitter). Default 1 s.
	BackoffBase time.Duration
	// BackoffCap bounds every retry delay, and is the delay after a
	// permanent error (403, NoSuchBucket, bad credentials...). Default 5 min.
	BackoffCap time.Duration
	// AttemptTimeout plus one second per MinThroughput bytes of the segment
	// bounds one PutObject attempt. Default 30 s.
	AttemptTimeout time.Duration
	// MinThroughput is the slowest upload rate, in bytes per second, that
	// an attempt is given time for. Default 1 MiB/s.
	MinThroughput int64
	// MultipartThreshold: a segment larger than this is uploaded in parts
	// of segment.PartSize (16 MiB), each retried on its own. Default
	// DefaultMultipartThreshold (128 MiB).
	MultipartThreshold int64
	// Scan lists the sealed segments at Start. Default
	// segment.ScanSealed(Root); the plugin passes its Spool's ScanSealed,
	// whose segments tell the Spool when they are removed, so it can
	// remove a container's folder once its last segment is uploaded.
	Scan func() ([]segment.Sealed, error)
	// Observer, when set, is told the outcome of every upload attempt (see
	// Observer). Default: none.
	Observer Observer

	// Test hooks; nil selects the real implementation.
	newClient func(ctx context.Context, d segment.Destination) (objectPutter, error)
	clock     clock
	randN     func(n int64) int64
}

// clock is the time source of the scheduler.
type clock interface {
	Now() time.Time
	// After is like time.After.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Uploader uploads sealed segments to S3 with a fair pool of workers (see
// the package documentation). Its methods are safe for concurrent use.
type Uploader struct {
	cfg       Config
	log       *slog.Logger
	clock     clock
	randN     func(int64) int64
	newClient func(ctx context.Context, d segment.Destination) (objectPutter, error)
	factory   *s3client.Factory // nil when newClient is a test hook

	// clientMu guards clients.
	clientMu sync.Mutex
	clients  map[s3client.Target]objectPutter

	// mu guards the fields below.
	mu      sync.Mutex
	state   int           // stateNew, stateRunning or stateClosed
	changed chan struct{} // closed and replaced when the queues or destinations change
	items   map[string]*item
	urgent  []*item
	queues  map[string][]*item // per container, FIFO
	ring    []string           // containers with a non-empty queue, round-robin order
	cursor  int                // index in ring where the next search starts
	dests   map[destKey]*destState

	runCtx    context.Context // set by Start; cancelled by Close after its deadline
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the workers
	done      chan struct{}  // closed once the workers have exited (after Close)
	closeOnce sync.Once
}

const (
	stateNew = iota
	stateRunning
	stateClosed
)

// item is a segment that is queued or being uploaded.
type item struct {
	seg       segment.Sealed
	container string // queue key
	urgent    bool
	inflight  bool
	probe     bool // picked as the probe of a failing destination
	md5       string
	size      int64
	failed    int // failed attempts so far: the next one is a retry
	// md5FromFile: md5 was computed from the file, not taken from the
	// sidecar (so a BadDigest is the network's fault).
	md5FromFile bool
	// mp is the multipart upload in progress, kept across attempts.
	mp *multipart
	// Local failures (reading the file) back off per segment.
	localFailures int
	notBefore     time.Time
}

// destState is the circuit state of one destination.
type destState struct {
	failures  int       // consecutive failed attempts; 0 = healthy
	since     time.Time // when the first of them ended
	notBefore time.Time // no attempt before this while failing
	probing   bool      // the one attempt allowed while failing is in flight
}

// New checks cfg, applies defaults and returns an Uploader that does
// nothing until Start.
func New(cfg Config) (*Uploader, error) {
	if cfg.Root == "" {
		return nil, fmt.Errorf("%w: Root is empty", ErrConfig)
	}
	if cfg.Workers < 0 || cfg.BackoffBase < 0 || cfg.BackoffCap < 0 || cfg.AttemptTimeout < 0 || cfg.MinThroughput < 0 {
		return nil, fmt.Errorf("%w: negative Workers, backoff, timeout or throughput", ErrConfig)
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.BackoffBase == 0 {
		cfg.BackoffBase = DefaultBackoffBase
	}
	if cfg.BackoffCap == 0 {
		cfg.BackoffCap = DefaultBackoffCap
	}
	if cfg.BackoffBase > cfg.BackoffCap {
		return nil, fmt.Errorf("%w: BackoffBase %s exceeds BackoffCap %s", ErrConfig, cfg.BackoffBase, cfg.BackoffCap)
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.MinThroughput == 0 {
		cfg.MinThroughput = DefaultMinThroughput
	}
	if cfg.MultipartThreshold <= 0 {
		cfg.MultipartThreshold = DefaultMultipartThreshold
	}
	u := &Uploader{
		cfg:       cfg,
		log:       cfg.Logger,
		clock:     cfg.clock,
		randN:     cfg.randN,
		newClient: cfg.newClient,
		clients:   make(map[s3client.Target]objectPutter),
		changed:   make(chan struct{}),
		items:     make(map[string]*item),
		queues:    make(map[string][]*item),
		dests:     make(map[destKey]*destState),
		done:      make(chan struct{}),
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.clock == nil {
		u.clock = realClock{}
	}
	if u.randN == nil {
		u.randN = rand.Int64N
	}
	if u.newClient == nil {
		u.factory = s3client.NewFactory(s3client.Options{MaxAttempts: 1})
		u.newClient = func(ctx context.Context, d segment.Destination) (objectPutter, error) {
			return u.factory.Client(ctx, targetOf(d))
		}
	}
	return u, nil
}

// Start scans the spool root once and queues every sealed segment found
// (problems of the scan, such as quarantined files, are logged), then starts
// Config.Workers worker goroutines. The workers run until Close, or until ctx
// is cancelled, which also aborts in-flight uploads (their segments stay on
// disk); Close must be called in either case to wait for them. Start returns
// ErrStarted if called twice and ErrClosed after Close.
func (u *Uploader) Start(ctx context.Context) error {
	u.mu.Lock()
	switch u.state {
	case stateRunning:
		u.mu.Unlock()
		return ErrStarted
	case stateClosed:
		u.mu.Unlock()
		return ErrClosed
	}
	u.state = stateRunning
	u.runCtx, u.cancel = context.WithCancel(ctx)
	u.wg.Add(u.cfg.Workers)
	u.mu.Unlock()

	scan := u.cfg.Scan
	if scan == nil {
		scan = func() ([]segment.Sealed, error) { return segment.ScanSealed(u.cfg.Root) }
	}
	segs, err := scan()
	if err != nil {
		u.log.Error("uploader: spool scan reported problems", "root", u.cfg.Root, "err", err)
	}
	for _, s := range segs {
		u.Enqueue(s, false)
	}
	u.log.Info("uploader: started", "root", u.cfg.Root, "segments", len(segs), "workers", u.cfg.Workers)
	for range u.cfg.Workers {
		go u.worker()
	}
	return nil
}

// Enqueue queues a sealed segment for upload. urgent marks a segment sealed
// because its container stopped: it goes ahead of every container's
// backlog. Enqueue only takes a lock; it never waits for the network.
// Enqueueing a segment (same data file path) that is already queued or being
// uploaded does nothing, except that urgent moves a queued segment to the
// urgent queue. A segment enqueued after Close is left on disk for the next
// Start; one whose file has disappeared by the time a worker takes it (for
// example already uploaded) is dropped silently. Enqueue may be called before
// Start.
func (u *Uploader) Enqueue(s segment.Sealed, urgent bool) {
	if s.Meta.Key == "" || s.Meta.Destination.Bucket == "" {
		u.log.Error("uploader: segment without key or bucket left on disk", "path", s.Path())
		return
	}
	path := s.Path()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state == stateClosed {
		u.log.Debug("uploader: closed, segment left on disk", "path", path)
		return
	}
	if it, ok := u.items[path]; ok {
		if urgent && !it.urgent {
			it.urgent = true
			if !it.inflight && u.removeQueuedLocked(it) {
				u.urgent = append(u.urgent, it)
				u.broadcastLocked()
			}
		}
		return
	}
	c := s.Meta.Container.ID
	if c == "" {
		c = s.Dir
	}
	it := &item{seg: s, container: c, urgent: urgent}
	u.items[path] = it
	u.pushLocked(it, false)
	u.broadcastLocked()
}

// Pending returns the number of segments queued or being uploaded.
func (u *Uploader) Pending() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.items)
}

// Drain uploads everything queued, and every segment enqueued while it
// waits, until nothing is queued or in flight, or until ctx is done; it is
// the shutdown step that empties the spool before the process exits. Urgent
// segments (their container stopped) keep going first. Each failing
// destination's backoff is cut short once, when Drain begins, so that one
// probe is tried at once instead of after a wait the process would not
// survive. Drain does not stop the Uploader: call Close afterwards. It
// returns nil when the queue emptied, ctx.Err() when ctx ended first, and
// ErrClosed if the Uploader is not running. Safe for concurrent use.
func (u *Uploader) Drain(ctx context.Context) error {
	u.mu.Lock()
	if u.state != stateRunning {
		u.mu.Unlock()
		return ErrClosed
	}
	now := u.clock.Now()
	for _, ds := range u.dests {
		if !ds.probing && ds.notBefore.After(now) {
			ds.notBefore = now
		}
	}
	for _, it := range u.items {
		if it.notBefore.After(now) {
			it.notBefore = now
		}
	}
	u.broadcastLocked()
	u.mu.Unlock()
	for {
		u.mu.Lock()
		n, ch, st := len(u.items), u.changed, u.state
		u.mu.Unlock()
		switch {
		case n == 0:
			return nil
		case st != stateRunning:
			return ErrClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops taking work: queued segments stay on disk for the next Start
// and later Enqueue calls are ignored. In-flight uploads may finish until
// ctx is done; then they are cancelled (their segments stay on disk) and
// Close returns ctx.Err() once every worker has exited. Close may be called
// more than once, concurrently; each call waits for the workers.
func (u *Uploader) Close(ctx context.Context) error {
	u.mu.Lock()
	if u.state != stateClosed {
		u.state = stateClosed
		u.broadcastLocked()
		u.closeOnce.Do(func() {
			go func() {
				u.wg.Wait()
				close(u.done)
			}()
		})
	}
	cancel := u.cancel
	u.mu.Unlock()

	var err error
	select {
	case <-u.done:
	case <-ctx.Done():
		err = ctx.Err()
		cancel()
		<-u.done
	}
	if cancel != nil {
		cancel()
	}
	if u.factory != nil {
		u.factory.CloseIdle()
	}
	u.log.Info("uploader: stopped", "left_on_disk", u.Pending())
	return err
}

// worker uploads segments until Close or the cancellation of Start's ctx.
func (u *Uploader) worker() {
	defer u.wg.Done()
	for {
		it := u.take()
		if it == nil {
			return
		}
		u.process(it)
	}
}

// take waits for a segment that may be uploaded now and marks it in flight.
// It returns nil when the Uploader stops.
func (u *Uploader) take() *item {
	u.mu.Lock()
	for {
		if u.state == stateClosed || u.runCtx.Err() != nil {
			u.mu.Unlock()
			return nil
		}
		it, wait := u.pickLocked(u.clock.Now())
		if it != nil {
			it.inflight = true
			u.mu.Unlock()
			return it
		}
		ch := u.changed
		u.mu.Unlock()
		var timer <-chan time.Time
		if wait >= 0 {
			timer = u.clock.After(wait)
		}
		select {
		case <-ch:
		case <-timer:
		case <-u.runCtx.Done():
		}
		u.mu.Lock()
	}
}

// pickLocked removes and returns the next segment that may be uploaded at
// now: the first ready urgent one, else the head of the next container queue
// in round-robin order whose head is ready. Otherwise it returns how long
// until something becomes ready, or -1 if only a change of state can help.
func (u *Uploader) pickLocked(now time.Time) (*item, time.Duration) {
	wait := time.Duration(-1)
	for i, it := range u.urgent {
		if u.readyLocked(it, now, &wait) {
			u.urgent = append(u.urgent[:i], u.urgent[i+1:]...)
			return it, 0
		}
	}
	n := len(u.ring)
	for j := range n {
		idx := (u.cursor + j) % n
		c := u.ring[idx]
		q := u.queues[c]
		it := q[0]
		if !u.readyLocked(it, now, &wait) {
			continue
		}
		q[0] = nil
		q = q[1:]
		if len(q) == 0 {
			delete(u.queues, c)
			u.ring = append(u.ring[:idx], u.ring[idx+1:]...)
			u.cursor = idx // the next container moved into idx
		} else {
			u.queues[c] = q
			u.cursor = idx + 1
		}
		if len(u.ring) > 0 {
			u.cursor %= len(u.ring)
		} else {
			u.cursor = 0
		}
		return it, 0
	}
	return nil, wait
}

// readyLocked reports whether it may be uploaded at now, and marks it as
// its destination's probe if the destination is failing. If not, it lowers
// *wait to the time until it becomes ready, if that is known.
func (u *Uploader) readyLocked(it *item, now time.Time, wait *time.Duration) bool {
	lower := func(d time.Duration) {
		if *wait < 0 || d < *wait {
			*wait = d
		}
	}
	if now.Before(it.notBefore) {
		lower(it.notBefore.Sub(now))
		return false
	}
	ds := u.dests[keyOf(it.seg.Meta.Destination)]
	if ds == nil || ds.failures == 0 {
		it.probe = false
		return true
	}
	if ds.probing {
		return false // wakes when the probe ends
	}
	if now.Before(ds.notBefore) {
		lower(ds.notBefore.Sub(now))
		return false
	}
	ds.probing = true
	it.probe = true
	return true
}

// pushLocked queues it at the tail (or, for a retry, at the head) of the
// urgent queue or its container's queue.
func (u *Uploader) pushLocked(it *item, head bool) {
	if it.urgent {
		if head {
			u.urgent = append([]*item{it}, u.urgent...)
		} else {
			u.urgent = append(u.urgent, it)
		}
		return
	}
	q, ok := u.queues[it.container]
	if !ok {
		u.ring = append(u.ring, it.container)
	}
	if head {
		q = append([]*item{it}, q...)
	} else {
		q = append(q, it)
	}
	u.queues[it.container] = q
}

// removeQueuedLocked removes a queued non-urgent item from its container
// queue and reports whether it was there.
func (u *Uploader) removeQueuedLocked(it *item) bool {
	q := u.queues[it.container]
	for i, x := range q {
		if x != it {
			continue
		}
		q = append(q[:i], q[i+1:]...)
		if len(q) > 0 {
			u.queues[it.container] = q
			return true
		}
		delete(u.queues, it.container)
		for j, c := range u.ring {
			if c == it.container {
				u.ring = append(u.ring[:j], u.ring[j+1:]...)
				if u.cursor > j {
					u.cursor--
				}
				break
			}
		}
		if len(u.ring) == 0 || u.cursor >= len(u.ring) {
			u.cursor = 0
		}
		return true
	}
	return false
}

// broadcastLocked wakes every waiting worker.
func (u *Uploader) broadcastLocked() {
	close(u.changed)
	u.changed = make(chan struct{})
}

// errGone means the segment's data file no longer exists.
var errGone = errors.New("uploader: segment file is gone")

// localError is a failure to read the segment, not a failure of S3.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// process makes one upload attempt for it and files the outcome.
func (u *Uploader) process(it *item) {
	start := u.clock.Now()
	err := u.attempt(it)
	elapsed := u.clock.Now().Sub(start)
	m := it.seg.Meta
	bucket, key := m.Destination.Bucket, m.Key

	if !errors.Is(err, errGone) && u.cfg.Observer != nil {
		res, code := u.outcome(err)
		u.cfg.Observer.ObserveUpload(Attempt{Bucket: bucket, Result: res, Code: code,
			Bytes: it.size, Duration: elapsed, Retry: it.failed > 0})
	}
	if err == nil {
		u.log.Debug("uploader: uploaded", "bucket", bucket, "key", key, "bytes", it.size, "duration", elapsed)
		if rerr := it.seg.Remove(); rerr != nil {
			// The object is safe in S3; a later start uploads the same
			// bytes under the same key again.
			u.log.Error("uploader: uploaded but could not remove the local segment", "bucket", bucket, "key", key, "path", it.seg.Path(), "err", rerr)
		}
		u.mu.Lock()
		delete(u.items, it.seg.Path())
		ds := u.dests[keyOf(m.Destination)]
		if ds != nil && ds.failures > 0 {
			u.log.Info("uploader: destination recovered", "bucket", bucket, "endpoint", m.Destination.Endpoint, "failed_attempts", ds.failures)
		}
		delete(u.dests, keyOf(m.Destination))
		u.broadcastLocked()
		u.mu.Unlock()
		return
	}

	u.mu.Lock()
	defer u.mu.Unlock()
	defer u.broadcastLocked()
	it.inflight = false
	it.failed++
	ds := u.dests[keyOf(m.Destination)]
	if it.probe && ds != nil {
		ds.probing = false
	}
	it.probe = false

	if errors.Is(err, errGone) {
		u.log.Debug("uploader: segment file is gone, dropped", "path", it.seg.Path(), "key", key)
		delete(u.items, it.seg.Path())
		return
	}
	var lerr *localError
	if errors.As(err, &lerr) {
		delay := backoff(u.cfg.BackoffBase, u.cfg.BackoffCap, it.localFailures, u.randN)
		it.localFailures++
		it.notBefore = u.clock.Now().Add(delay)
		u.log.Error("uploader: cannot read segment, kept", "path", it.seg.Path(), "bucket", bucket, "key", key, "retry_in", delay, "err", err)
		u.pushLocked(it, true)
		return
	}
	class := classify(u.runCtx, err)
	if class == classAborted { // Close's deadline passed or Start's ctx ended
		u.pushLocked(it, true)
		return
	}
	if ds == nil {
		ds = &destState{}
		u.dests[keyOf(m.Destination)] = ds
	}
	counted := ds.failures == 0 || it.probe || !ds.probing && !u.clock.Now().Before(ds.notBefore)
	attrs := []any{"bucket", bucket, "key", key, "code", errorCode(err), "class", class.String()}
	if !counted {
		// A concurrent attempt that started before the destination failed.
		u.log.Debug("uploader: upload failed, kept", append(attrs, "err", err)...)
		u.pushLocked(it, true)
		return
	}
	delay := u.cfg.BackoffCap
	if class == classRetryable {
		delay = backoff(u.cfg.BackoffBase, u.cfg.BackoffCap, ds.failures, u.randN)
	}
	if ds.failures == 0 {
		ds.since = u.clock.Now()
	}
	ds.failures++
	ds.notBefore = u.clock.Now().Add(delay)
	attrs = append(attrs, "endpoint", m.Destination.Endpoint, "failures", ds.failures, "retry_in", delay, "err", err)
	if class == classPermanent {
		u.log.Error("uploader: upload refused, segment kept", attrs...)
	} else {
		u.log.Warn("uploader: upload failed, segment kept", attrs...)
	}
	u.pushLocked(it, true)
}

// attempt makes one upload attempt for it: a PutObject, or the missing
// parts of a multipart upload (see uploadParts).
func (u *Uploader) attempt(it *item) error {
	client, err := u.client(it.seg.Meta.Destination)
	if err != nil {
		return err
	}
	if it.md5 == "" {
		if m := it.seg.Meta; m.ContentMD5 != "" && m.CompressedBytes > 0 {
			// Computed while the segment was written: no extra read.
			it.md5, it.size = m.ContentMD5, m.CompressedBytes
		} else {
			sum, size, err := fileMD5(it.seg.Path())
			if errors.Is(err, os.ErrNotExist) {
				return errGone
			}
			if err != nil {
				return &localError{err}
			}
			it.md5, it.size, it.md5FromFile = sum, size, true
		}
	}
	f, err := it.seg.Open()
	if errors.Is(err, os.ErrNotExist) {
		return errGone
	}
	if err != nil {
		return &localError{err}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return &localError{err}
	}
	if fi.Size() != it.size {
		it.md5 = "" // recomputed next time
		return &localError{fmt.Errorf("uploader: %s changed size from %d to %d bytes after sealing", it.seg.Path(), it.size, fi.Size())}
	}
	timeout := u.cfg.AttemptTimeout + time.Duration(float64(it.size)/float64(u.cfg.MinThroughput)*float64(time.Second))
	ctx, cancel := context.WithTimeout(u.runCtx, timeout)
	defer cancel()
	if mc, ok := client.(multipartAPI); ok && it.size > u.cfg.MultipartThreshold {
		return u.uploadParts(ctx, mc, it, f)
	}
	_, err = client.PutObject(ctx, putInput(it.seg, io.ReadSeeker(f), it.size, it.md5), unsignedOverTLS)
	if err != nil {
		if isBadDigest(err) && !it.md5FromFile {
			u.checkDigest(it)
		}
		return fmt.Errorf("PutObject %s/%s: %w", it.seg.Meta.Destination.Bucket, it.seg.Meta.Key, err)
	}
	return nil
}

// checkDigest runs after S3 refused a body as not matching the sidecar's
// MD5: it hashes the file. If the file no longer matches what was written
// (changed on disk after sealing), that is logged and the file's own MD5
// is used from now on, so the bytes there are uploaded rather than kept
// forever; if it matches, the body was damaged in transit and the next
// attempt retries as usual.
func (u *Uploader) checkDigest(it *item) {
	sum, size, err := fileMD5(it.seg.Path())
	if err != nil {
		return
	}
	it.md5FromFile = true
	if sum != it.md5 || size != it.size {
		u.log.Error("uploader: segment file changed on disk after it was sealed (MD5 differs from the one computed while writing); uploading it as it is",
			"key", it.seg.Meta.Key, "path", it.seg.Path(), "sealed_md5", it.md5, "file_md5", sum)
		it.md5, it.size = sum, size
	}
}

// client returns the destination's S3 client, creating it on first use.
func (u *Uploader) client(d segment.Destination) (objectPutter, error) {
	k := targetOf(d)
	u.clientMu.Lock()
	defer u.clientMu.Unlock()
	if c, ok := u.clients[k]; ok {
		return c, nil
	}
	c, err := u.newClient(u.runCtx, d)
	if err != nil {
		return nil, err
	}
	u.clients[k] = c
	return c, nil
}
