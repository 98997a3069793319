package reader

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3logs/s3logs/keys"
)

// maxUnits bounds the time units a listing is expanded into; a longer
// window lists the time folders instead of naming them.
const maxUnits = 5000

// element is one "/"-separated piece of a walked template.
type element struct {
	parts []keys.Part
	last  bool // the file name's start: no "/" follows
}

// elements splits walked parts at every "/".
func elements(parts []keys.Part) []element {
	els := []element{{}}
	for _, p := range parts {
		if p.Field != "" {
			els[len(els)-1].parts = append(els[len(els)-1].parts, p)
			continue
		}
		pieces := strings.Split(p.Text, "/")
		for i, t := range pieces {
			if i > 0 {
				els = append(els, element{})
			}
			if t != "" {
				els[len(els)-1].parts = append(els[len(els)-1].parts, keys.Part{Text: t})
			}
		}
	}
	els[len(els)-1].last = true
	return els
}

// unit is the time granularity of a template: the finest of its time
// fields.
type unit int

const (
	unitNone unit = iota
	unitYear
	unitMonth
	unitDay
	unitHour
)

func unitOf(parts []keys.Part) unit {
	u := unitNone
	for _, p := range parts {
		var v unit
		switch p.Field {
		case "Year":
			v = unitYear
		case "Month":
			v = unitMonth
		case "Day":
			v = unitDay
		case "Hour":
			v = unitHour
		}
		u = max(u, v)
	}
	return u
}

// truncate returns the start of t's unit.
func (u unit) truncate(t time.Time) time.Time {
	t = t.UTC()
	switch u {
	case unitYear:
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
	case unitMonth:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	case unitDay:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	}
	return t.Truncate(time.Hour)
}

func (u unit) next(t time.Time) time.Time {
	switch u {
	case unitYear:
		return t.AddDate(1, 0, 0)
	case unitMonth:
		return t.AddDate(0, 1, 0)
	case unitDay:
		return t.AddDate(0, 0, 1)
	}
	return t.Add(time.Hour)
}

// units lists the starts of the units from..to, or nil if more than
// maxUnits.
func (u unit) units(from, to time.Time) []time.Time {
	var out []time.Time
	for t := u.truncate(from); !t.After(to); t = u.next(t) {
		if len(out) == maxUnits {
			return nil
		}
		out = append(out, t)
	}
	return out
}

// isTimeField reports whether f is one of the time fields.
func isTimeField(f string) bool {
	return f == "Year" || f == "Month" || f == "Day" || f == "Hour"
}

// lister walks a template over S3, listing what it cannot name.
type lister struct {
	r        *Reader
	els      []element
	unit     unit
	units    []time.Time         // the window's units, nil if unbounded
	known    map[string][]string // values of fields known from the selectors
	found    []Object
	prefixes []string // every prefix listed, in order
}

// binding carries the values fixed so far along one path of the walk.
type binding struct {
	unitStart *time.Time
	vals      map[string]string
}

func (b binding) with(field, v string) binding {
	m := make(map[string]string, len(b.vals)+1)
	for k, x := range b.vals {
		m[k] = x
	}
	m[field] = v
	return binding{unitStart: b.unitStart, vals: m}
}

// values returns the possible values of a field on this path, or nil if
// it is not known.
func (l *lister) values(f string, b binding) []string {
	if v, ok := b.vals[f]; ok {
		return []string{v}
	}
	if isTimeField(f) {
		if b.unitStart == nil {
			return nil
		}
		return []string{keys.FieldValue(f, keys.Info{}, *b.unitStart)}
	}
	return l.known[f]
}

// walk expands element i under prefix.
func (l *lister) walk(ctx context.Context, prefix string, i int, b binding) error {
	el := l.els[i]
	if b.unitStart == nil && l.units != nil && slices.ContainsFunc(el.parts, func(p keys.Part) bool { return isTimeField(p.Field) }) {
		for _, u := range l.units {
			bu := b
			bu.unitStart = &u
			if err := l.walk(ctx, prefix, i, bu); err != nil {
				return err
			}
		}
		return nil
	}
	if el.last {
		return l.listObjects(ctx, prefix, el, b)
	}
	// Every field known: name the folders.
	renders := []struct {
		s string
		b binding
	}{{"", b}}
	allKnown := true
	for _, p := range el.parts {
		if p.Field == "" {
			for k := range renders {
				renders[k].s += p.Text
			}
			continue
		}
		vs := l.values(p.Field, b)
		if vs == nil {
			allKnown = false
			break
		}
		var next []struct {
			s string
			b binding
		}
		for _, r := range renders {
			for _, v := range vs {
				next = append(next, struct {
					s string
					b binding
				}{r.s + v, r.b.with(p.Field, v)})
			}
		}
		renders = next
	}
	if allKnown {
		for _, r := range renders {
			p := keys.CleanPrefix(prefix + r.s + "/")
			if p != "" && !strings.HasSuffix(p, "/") {
				continue // the element sanitized away
			}
			if err := l.walk(ctx, p, i+1, r.b); err != nil {
				return err
			}
		}
		return nil
	}
	// A field is unknown: list the folders and keep those that match.
	re, names := l.pattern(el, b, false)
	return l.list(ctx, prefix, "/", func(_ string, cp string) error {
		v := strings.TrimSuffix(cp[len(prefix):], "/")
		m := re.FindStringSubmatch(v)
		if m == nil {
			return nil
		}
		bb := b
		for k, n := range names {
			if n != "" {
				bb = bb.with(n, m[k])
			}
		}
		return l.walk(ctx, cp, i+1, bb)
	})
}

// pattern builds the regular expression of an element: literal text,
// known values, and a capture group for every unknown field. names[k] is
// the field captured by group k. For the last element the file part
// follows.
func (l *lister) pattern(el element, b binding, last bool) (*regexp.Regexp, []string) {
	var sb strings.Builder
	names := []string{""}
	sb.WriteString("^")
	for _, p := range el.parts {
		if p.Field == "" {
			sb.WriteString(regexp.QuoteMeta(p.Text))
			continue
		}
		if vs := l.values(p.Field, b); vs != nil {
			sb.WriteString("(?:")
			for k, v := range vs {
				if k > 0 {
					sb.WriteString("|")
				}
				sb.WriteString(regexp.QuoteMeta(v))
			}
			sb.WriteString(")")
			continue
		}
		sb.WriteString("([^/]*?)")
		names = append(names, p.Field)
	}
	if !last {
		sb.WriteString("$")
	}
	return regexp.MustCompile(sb.String()), names
}

// listObjects lists the objects of the last element under prefix.
func (l *lister) listObjects(ctx context.Context, prefix string, el element, b binding) error {
	re, names := l.pattern(el, b, true)
	return l.list(ctx, prefix, "/", func(key, cp string) error {
		if key == "" {
			return nil
		}
		f, ok := keys.ParseFilePart(key)
		if !ok || f.Start < len(prefix) {
			return nil
		}
		m := re.FindStringSubmatch(key[len(prefix):f.Start])
		if m == nil || len(m[0]) != f.Start-len(prefix) {
			return nil
		}
		o := Object{Key: key, File: f}
		for k, n := range names {
			if n == "Name" {
				o.Name = m[k]
			}
		}
		if v, ok := b.vals["Name"]; ok {
			o.Name = v
		}
		l.found = append(l.found, o)
		return nil
	})
}

// list calls fn for every object (key set) and common prefix (cp set)
// under prefix, page by page.
func (l *lister) list(ctx context.Context, prefix, delim string, fn func(key, cp string) error) error {
	l.prefixes = append(l.prefixes, prefix)
	if l.r.cfg.OnList != nil {
		l.r.cfg.OnList(prefix)
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(l.r.cfg.Bucket), Prefix: aws.String(prefix)}
	if delim != "" {
		in.Delimiter = aws.String(delim)
	}
	for {
		out, err := l.r.cfg.Store.ListObjectsV2(ctx, in)
		if err != nil {
			return classify(fmt.Errorf("list s3://%s/%s: %w", l.r.cfg.Bucket, prefix, err))
		}
		for _, o := range out.Contents {
			key := aws.ToString(o.Key)
			if err := fn(key, ""); err != nil {
				return err
			}
			if n := len(l.found); n > 0 && l.found[n-1].Key == key {
				l.found[n-1].Size = aws.ToInt64(o.Size)
			}
		}
		for _, cp := range out.CommonPrefixes {
			if err := fn("", aws.ToString(cp.Prefix)); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}

// ErrNotFound is wrapped by Find's error when no container matches a
// selector in the window.
var ErrNotFound = errors.New("no such container")

// NotFoundError says which selectors matched nothing and where the reader
// looked.
type NotFoundError struct {
	Selectors []string
	Prefixes  []string // the key prefixes listed
	Window    Window
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no such container in %s: %s", e.Window, strings.Join(e.Selectors, ", "))
	const show = 8
	b.WriteString(" (looked under ")
	for i, p := range e.Prefixes {
		if i == show {
			fmt.Fprintf(&b, " and %d more", len(e.Prefixes)-show)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if p == "" {
			p = "the bucket's root"
		}
		fmt.Fprintf(&b, "%q", p)
	}
	b.WriteString(")")
	return b.String()
}

func (e *NotFoundError) Unwrap() error { return ErrNotFound }
