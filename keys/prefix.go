package keys

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// DefaultPrefix is the prefix template used when the user sets none: the
// container name, then the UTC date of the segment's first record.
const DefaultPrefix = "{{.Name}}/{{.Year}}/{{.Month}}/{{.Day}}/"

// ErrBadPrefix is wrapped by every error ParsePrefix returns.
var ErrBadPrefix = errors.New("keys: bad prefix template")

// maxRender bounds the bytes a template may write in one execution. Output
// beyond MaxKeyLen is trimmed anyway; the bound stops a runaway template
// (for example a range over a large integer) from filling memory.
const maxRender = 4 * MaxKeyLen

// Info is the container metadata a prefix template can use.
type Info struct {
	ContainerID   string // full container id (64 hex digits from Docker)
	ContainerName string // container name; Docker sends it with a leading "/"
	ImageName     string // image name as the user gave it, e.g. "nginx:1.27"
	ImageID       string // image id, may carry an algorithm such as "sha256:"
	DaemonName    string // "docker"
	Hostname      string // host name of the machine running the plugin
}

// fields is the template's data. Every field is a string, so the set of
// valid field names is exactly the set of struct fields below.
type fields struct {
	ID          string // first 12 characters of the container id
	FullID      string // full container id
	Name        string // container name without the leading "/"
	ImageName   string
	ImageID     string // image id without algorithm, first 12 characters
	ImageFullID string // image id as Docker gives it
	DaemonName  string
	Hostname    string
	Year        string // "2026"
	Month       string // "01".."12"
	Day         string // "01".."31"
	Hour        string // "00".."23"
}

// truncateID shortens an id the way Docker's stringid.TruncateID does: drop
// an algorithm prefix ("sha256:"), then keep at most 12 characters.
func truncateID(id string) string {
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

func newFields(info Info, first time.Time) fields {
	t := first.UTC()
	return fields{
		ID:          truncateID(info.ContainerID),
		FullID:      info.ContainerID,
		Name:        strings.TrimPrefix(info.ContainerName, "/"),
		ImageName:   info.ImageName,
		ImageID:     truncateID(info.ImageID),
		ImageFullID: info.ImageID,
		DaemonName:  info.DaemonName,
		Hostname:    info.Hostname,
		Year:        fmt.Sprintf("%04d", t.Year()),
		Month:       fmt.Sprintf("%02d", int(t.Month())),
		Day:         fmt.Sprintf("%02d", t.Day()),
		Hour:        fmt.Sprintf("%02d", t.Hour()),
	}
}

// Prefix is a parsed prefix template. It is immutable and safe for
// concurrent use by multiple goroutines.
type Prefix struct {
	src      string
	tmpl     *template.Template
	fallback *template.Template // DefaultPrefix, used when tmpl fails at run time
}

// sampleInfo and sampleTime are the data ParsePrefix executes a template
// against, so that unknown fields and run-time errors surface at parse time.
var (
	sampleInfo = Info{
		ContainerID:   "3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
		ContainerName: "/sample",
		ImageName:     "registry.example/sample:1.0",
		ImageID:       "sha256:9b8a7c6d5e4f30211f2e3d4c5b6a79880a1b2c3d4e5f60718293a4b5c6d7e8f9",
		DaemonName:    "docker",
		Hostname:      "host.example",
	}
	sampleTime = time.Date(2026, time.November, 27, 15, 44, 5, 123e6, time.UTC)
)

// ParsePrefix parses a prefix template. The empty string means
// DefaultPrefix. The template may use {{.ID}}, {{.FullID}}, {{.Name}},
// {{.ImageName}}, {{.ImageID}}, {{.ImageFullID}}, {{.DaemonName}},
// {{.Hostname}}, {{.Year}}, {{.Month}}, {{.Day}} and {{.Hour}} and the
// text/template built-in functions; {{range}} is refused. The template is
// executed once against sample data, so an unknown field or a run-time error
// is reported here.
// Every error wraps ErrBadPrefix.
func ParsePrefix(s string) (*Prefix, error) {
	if s == "" {
		s = DefaultPrefix
	}
	fallback := template.Must(template.New("prefix").Parse(DefaultPrefix))
	t, err := template.New("prefix").Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPrefix, err)
	}
	for _, tt := range t.Templates() {
		if tt.Tree != nil && hasRange(tt.Tree.Root) {
			return nil, fmt.Errorf("%w: {{range}} is not allowed in a prefix", ErrBadPrefix)
		}
	}
	var buf bytes.Buffer
	lw := &limitWriter{buf: &buf, n: maxRender}
	if err := t.Execute(lw, newFields(sampleInfo, sampleTime)); err != nil {
		if errors.Is(err, errTooLong) {
			return nil, fmt.Errorf("%w: renders more than %d bytes", ErrBadPrefix, maxRender)
		}
		return nil, fmt.Errorf("%w: %w", ErrBadPrefix, err)
	}
	return &Prefix{src: s, tmpl: t, fallback: fallback}, nil
}

// hasRange reports whether the tree holds a {{range}} action. Ranges are
// refused: the fields are strings, and a range over an integer could keep
// Render busy for minutes without writing a byte.
func hasRange(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.RangeNode:
		return true
	case *parse.ListNode:
		if n == nil {
			return false
		}
		for _, c := range n.Nodes {
			if hasRange(c) {
				return true
			}
		}
	case *parse.IfNode:
		return hasRange(n.List) || hasRange(n.ElseList)
	case *parse.WithNode:
		return hasRange(n.List) || hasRange(n.ElseList)
	}
	return false
}

// String returns the template source (DefaultPrefix if ParsePrefix got "").
func (p *Prefix) String() string { return p.src }

// Render executes the template for a container and the time of a segment's
// first record (converted to UTC), then sanitizes the result (see the
// package documentation) and bounds it to MaxKeyLen bytes. The result may
// be empty, ends with "/" when the rendered template does, and never starts
// with "/". If the template fails for this data (possible only with
// templates that branch on the data), Render uses DefaultPrefix instead. If
// the template writes more than 4*MaxKeyLen bytes, the output is cut there.
// Render is safe for concurrent use.
func (p *Prefix) Render(info Info, first time.Time) string {
	data := newFields(info, first)
	var buf bytes.Buffer
	lw := &limitWriter{buf: &buf, n: maxRender}
	if err := p.tmpl.Execute(lw, data); err != nil && !errors.Is(err, errTooLong) {
		buf.Reset()
		// DefaultPrefix only reads string fields: it cannot fail.
		_ = p.fallback.Execute(&buf, data)
	}
	return boundPrefix(sanitizePrefix(buf.String()), MaxKeyLen)
}

var errTooLong = errors.New("keys: template output too long")

// limitWriter passes at most n bytes to buf, then fails, which stops the
// template execution.
type limitWriter struct {
	buf *bytes.Buffer
	n   int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		w.buf.Write(p[:w.n])
		k := w.n
		w.n = 0
		return k, errTooLong
	}
	w.buf.Write(p)
	w.n -= len(p)
	return len(p), nil
}
