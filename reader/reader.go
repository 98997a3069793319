package reader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3logs/s3logs/keys"
)

// ObjectStore is the part of the S3 API the Reader uses. *s3.Client
// implements it. Implementations must be safe for concurrent use.
type ObjectStore interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

var _ ObjectStore = (*s3.Client)(nil)

// Defaults of Config.
const (
	// DefaultLookback is how long before a window's start the reader looks
	// for a segment that began earlier and still holds records of the
	// window: the longest segment-age it expects. The default segment-age
	// is 5m; a segment's records span at most its segment-age.
	DefaultLookback = time.Hour
	// DefaultConcurrency is the number of objects fetched and decoded at
	// once.
	DefaultConcurrency = 4
)

// Config configures a Reader.
type Config struct {
	// Store is the S3 client. Required.
	Store ObjectStore
	// Bucket is the bucket the segments were uploaded to. Required.
	Bucket string
	// Prefix is the key prefix template the containers logged with
	// (the "prefix" log-opt). Default keys.DefaultPrefix.
	Prefix *keys.Prefix
	// Lookback: see DefaultLookback.
	Lookback time.Duration
	// Concurrency: see DefaultConcurrency.
	Concurrency int
	// OnList, if set, is called with every prefix listed (for tests and
	// benchmarks). It must be safe for concurrent use.
	OnList func(prefix string)
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Reader finds and reads the segments s3logs uploaded. It is safe for
// concurrent use; it starts goroutines only inside its calls and waits
// for them before returning.
type Reader struct {
	cfg   Config
	parts []keys.Part
}

// New validates cfg. A prefix template the reader cannot walk is refused
// with an error wrapping keys.ErrNotWalkable.
func New(cfg Config) (*Reader, error) {
	if cfg.Store == nil || cfg.Bucket == "" {
		return nil, errors.New("reader: Store and Bucket are required")
	}
	if cfg.Prefix == nil {
		p, err := keys.ParsePrefix("")
		if err != nil {
			return nil, err
		}
		cfg.Prefix = p
	}
	if cfg.Lookback <= 0 {
		cfg.Lookback = DefaultLookback
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	parts, err := cfg.Prefix.Parts()
	if err != nil {
		return nil, fmt.Errorf("prefix %q: %w", cfg.Prefix, err)
	}
	return &Reader{cfg: cfg, parts: parts}, nil
}

// Window is a time range; a zero Since or Until leaves that side open.
// Both ends are inclusive, as in docker logs.
type Window struct {
	Since, Until time.Time
}

// Contains reports whether t lies in w.
func (w Window) Contains(t time.Time) bool {
	return (w.Since.IsZero() || !t.Before(w.Since)) && (w.Until.IsZero() || !t.After(w.Until))
}

func (w Window) String() string {
	f := func(t time.Time, open string) string {
		if t.IsZero() {
			return open
		}
		return t.UTC().Format(time.RFC3339)
	}
	if w.Since.IsZero() && w.Until.IsZero() {
		return "all time"
	}
	return "[" + f(w.Since, "beginning") + " .. " + f(w.Until, "now") + "]"
}

// Object is one uploaded segment found by a listing.
type Object struct {
	Key  string
	Size int64
	File keys.File
	Name string // container name from the key, "" if the template has no {{.Name}}
}

// Container is one container's segments in time order.
type Container struct {
	// ID is the first 12 characters of the container id.
	ID string
	// Name is the container name, from the key or the newest object's
	// metadata; "" if neither has it.
	Name string
	// Segments are in order of first record time, then sequence number.
	Segments []Segment
}

// Label returns the name, or the id if the name is unknown.
func (c *Container) Label() string {
	if c.Name != "" {
		return c.Name
	}
	return c.ID
}

// Find lists the segments of the containers that match the selectors
// (a container name, or a prefix of its id; none selects every container)
// and may hold records in w, grouped by container and ordered by time.
// It lists only the key prefixes the template and the window allow (see
// the package documentation). A selector that matches nothing gives a
// *NotFoundError; the containers found for the others are returned with
// it.
func (r *Reader) Find(ctx context.Context, selectors []string, w Window) ([]*Container, error) {
	return r.find(ctx, selectors, w, w.Since)
}

// find is Find listing the time units from listFrom (less the look-back)
// instead of from w.Since: a follow lists only recent folders but must not
// prune segments it has not printed.
func (r *Reader) find(ctx context.Context, selectors []string, w Window, listFrom time.Time) ([]*Container, error) {
	var objs []Object
	var prefixes []string
	// First pass: selectors as names.
	known := map[string][]string{"DaemonName": {"docker"}}
	hasName := slices.ContainsFunc(r.parts, func(p keys.Part) bool { return p.Field == "Name" })
	if len(selectors) > 0 && hasName {
		known["Name"] = selectors
	}
	o, p, err := r.listAll(ctx, known, w, listFrom)
	if err != nil {
		return nil, err
	}
	objs, prefixes = append(objs, o...), append(prefixes, p...)
	cs := r.group(objs, w)
	if err := r.fillNames(ctx, cs, len(selectors) > 0 && !hasName); err != nil {
		return nil, err
	}
	if len(selectors) == 0 {
		return cs, nil
	}
	matched, missing := match(cs, selectors)
	if len(missing) > 0 && hasName {
		// Second pass: the rest as id prefixes, names unknown.
		known := map[string][]string{"DaemonName": {"docker"}}
		if ids := idFields(missing); ids != nil {
			known["ID"] = ids
		}
		o, p, err := r.listAll(ctx, known, w, listFrom)
		if err != nil {
			return nil, err
		}
		prefixes = append(prefixes, p...)
		more, still := match(r.group(o, w), missing)
		matched = append(matched, more...)
		missing = still
	}
	slices.SortFunc(matched, func(a, b *Container) int { return a.Segments[0].First.Compare(b.Segments[0].First) })
	if len(missing) > 0 {
		return matched, &NotFoundError{Selectors: missing, Prefixes: prefixes, Window: w}
	}
	return matched, nil
}

// idFields returns the {{.ID}} values of selectors that are full 12-digit
// id prefixes, or nil if any selector is shorter (then ID is unknown).
func idFields(sel []string) []string {
	var out []string
	for _, s := range sel {
		if len(s) < 12 {
			return nil
		}
		out = append(out, s[:12])
	}
	return out
}

// listAll walks the template for the time units from listFrom (less the
// look-back) to w.Until; a zero listFrom lists every time folder.
func (r *Reader) listAll(ctx context.Context, known map[string][]string, w Window, listFrom time.Time) ([]Object, []string, error) {
	l := &lister{r: r, els: elements(r.parts), unit: unitOf(r.parts), known: known}
	if l.unit != unitNone && !listFrom.IsZero() {
		until := w.Until
		if until.IsZero() || until.After(r.cfg.Now()) {
			until = r.cfg.Now().Add(time.Minute) // clock skew between hosts
		}
		l.units = l.unit.units(listFrom.Add(-r.cfg.Lookback), until)
	}
	err := l.walk(ctx, "", 0, binding{})
	return l.found, l.prefixes, err
}

// group sorts objects into containers and drops the segments that cannot
// hold records of w.
func (r *Reader) group(objs []Object, w Window) []*Container {
	byID := map[string]*Container{}
	var order []*Container
	seen := map[string]bool{}
	for _, o := range objs {
		if seen[o.Key] {
			continue
		}
		seen[o.Key] = true
		c := byID[o.File.ContainerID]
		if c == nil {
			c = &Container{ID: o.File.ContainerID}
			byID[o.File.ContainerID] = c
			order = append(order, c)
		}
		if o.Name != "" {
			c.Name = o.Name
		}
		c.Segments = append(c.Segments, o.segment(r))
	}
	var out []*Container
	for _, c := range order {
		sortSegments(c.Segments)
		c.Segments = prune(c.Segments, w)
		if len(c.Segments) > 0 {
			out = append(out, c)
		}
	}
	return out
}

// skew is how far a record's time may run past the next segment's first
// record (stdout and stderr are timestamped separately).
const skew = 2 * time.Second

// prune keeps the segments that may hold records in w: a segment's
// records lie between its first time and the next segment's.
func prune(segs []Segment, w Window) []Segment {
	var out []Segment
	for i, s := range segs {
		if !w.Until.IsZero() && s.First.After(w.Until) {
			break
		}
		if !w.Since.IsZero() && i+1 < len(segs) && segs[i+1].First.Add(skew).Before(w.Since) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// sortSegments orders segments by first time, then sequence number.
func sortSegments(segs []Segment) {
	slices.SortStableFunc(segs, func(a, b Segment) int {
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		if a.Seq != b.Seq {
			if a.Seq < b.Seq {
				return -1
			}
			return 1
		}
		return 0
	})
}

// match picks the containers each selector names: by name first, else by
// id prefix.
func match(cs []*Container, selectors []string) (matched []*Container, missing []string) {
	picked := map[*Container]bool{}
	for _, s := range selectors {
		n := 0
		for _, c := range cs {
			if c.Name == s {
				picked[c] = true
				n++
			}
		}
		if n == 0 {
			id := s
			if len(id) > 12 {
				id = id[:12]
			}
			for _, c := range cs {
				if strings.HasPrefix(c.ID, id) && id != "" {
					picked[c] = true
					n++
				}
			}
		}
		if n == 0 {
			missing = append(missing, s)
		}
	}
	for _, c := range cs {
		if picked[c] {
			matched = append(matched, c)
		}
	}
	return matched, missing
}

// fillNames reads the container name from the newest object's metadata
// for containers whose key has none, when needed.
func (r *Reader) fillNames(ctx context.Context, cs []*Container, needed bool) error {
	if !needed {
		return nil
	}
	for _, c := range cs {
		if c.Name != "" {
			continue
		}
		md, err := r.Head(ctx, c.Segments[len(c.Segments)-1].Key)
		if err != nil {
			return err
		}
		c.Name = md.Name
	}
	return nil
}

// ObjectInfo is what an object's metadata says about its segment.
type ObjectInfo struct {
	Name      string
	FullID    string
	FirstTime time.Time
	LastTime  time.Time
	Records   int64
	RawBytes  int64
}

// Head reads an object's s3logs metadata.
func (r *Reader) Head(ctx context.Context, key string) (ObjectInfo, error) {
	out, err := r.cfg.Store.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(r.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return ObjectInfo{}, classify(fmt.Errorf("head s3://%s/%s: %w", r.cfg.Bucket, key, err))
	}
	md := out.Metadata
	unesc := func(s string) string {
		if u, err := url.PathUnescape(s); err == nil {
			return u
		}
		return s
	}
	info := ObjectInfo{Name: unesc(md["container-name"]), FullID: md["container-id"]}
	info.FirstTime, _ = time.Parse(time.RFC3339Nano, md["first-time"])
	info.LastTime, _ = time.Parse(time.RFC3339Nano, md["last-time"])
	fmt.Sscan(md["records"], &info.Records)
	fmt.Sscan(md["raw-bytes"], &info.RawBytes)
	return info, nil
}

// S3 errors a user can act on.
var (
	// ErrNoBucket: the bucket does not exist.
	ErrNoBucket = errors.New("bucket does not exist")
	// ErrAccess: the credentials are refused or lack permission.
	ErrAccess = errors.New("access denied")
)

// classify wraps S3 errors a user can act on with ErrNoBucket or
// ErrAccess, keeping the original.
func classify(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode() {
	case "NoSuchBucket":
		return fmt.Errorf("%w: %w", ErrNoBucket, err)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "AllAccessDisabled", "Forbidden":
		return fmt.Errorf("%w: %w", ErrAccess, err)
	}
	return err
}

// openObject returns an opener for an S3 object's body.
func (r *Reader) openObject(key string) func(ctx context.Context) (io.ReadCloser, error) {
	return func(ctx context.Context) (io.ReadCloser, error) {
		out, err := r.cfg.Store.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.cfg.Bucket), Key: aws.String(key)})
		if err != nil {
			return nil, classify(fmt.Errorf("get s3://%s/%s: %w", r.cfg.Bucket, key, err))
		}
		return out.Body, nil
	}
}

// FindContainer lists the segments of one container known by its name
// (with or without the leading "/") and full id, as the plugin knows them,
// that may hold records in w. It lists as Find does with both the name
// and the id known, and keeps only that container's objects. A container
// with no objects gives a Container without segments.
func (r *Reader) FindContainer(ctx context.Context, name, fullID string, w Window) (*Container, error) {
	name = strings.TrimPrefix(name, "/")
	id12 := keys.FieldValue("ID", keys.Info{ContainerID: fullID}, time.Time{})
	known := map[string][]string{"DaemonName": {"docker"}, "Name": {name}, "ID": {id12}, "FullID": {fullID}}
	objs, _, err := r.listAll(ctx, known, w, w.Since)
	if err != nil {
		return nil, err
	}
	c := &Container{ID: id12, Name: name}
	want := keys.FilePart(time.Time{}, fullID, 0)[21:] // the id as file parts write it
	want = want[:strings.IndexByte(want, '_')]
	for _, g := range r.group(objs, w) {
		if g.ID == want {
			c.Segments = g.Segments
		}
	}
	return c, nil
}

// Open returns an opener for the object at key, for Segment.Open.
func (r *Reader) Open(key string) func(ctx context.Context) (io.ReadCloser, error) {
	return r.openObject(key)
}

// Order sorts segments by first record time, then sequence number, and
// drops those that cannot hold records of w (see Find).
func Order(segs []Segment, w Window) []Segment {
	sortSegments(segs)
	return prune(segs, w)
}
