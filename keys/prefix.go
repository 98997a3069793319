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

// Bounds on a prefix template. Output beyond MaxKeyLen is trimmed anyway;
// these stop a hostile template from filling memory or running long.
const (
	// MaxPrefixTemplateLen bounds the template source in bytes.
	MaxPrefixTemplateLen = 4 * MaxKeyLen
	// maxRender bounds the bytes a template may write in one execution,
	// and the length of every print or printf result.
	maxRender = 4 * MaxKeyLen
	// maxPrintfWidth bounds a printf width or precision.
	maxPrintfWidth = MaxKeyLen
)

// PrefixFuncs lists the functions a prefix template may call.
const PrefixFuncs = "print, printf, index, slice, len, eq, ne, lt, le, gt, ge, and, or, not"

// allowedFuncs is PrefixFuncs as a set. The other text/template built-ins
// are refused: html, js and urlquery can multiply their input's length
// (nested js doubles it each time), call needs a function value and
// println only adds a newline.
var allowedFuncs = map[string]bool{
	"print": true, "printf": true, "index": true, "slice": true, "len": true,
	"eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
	"and": true, "or": true, "not": true,
}

// prefixFuncs replace the built-in print and printf (text/template looks
// up a template's own functions before the built-ins) with versions whose
// result is at most maxRender bytes, so no intermediate value outgrows what
// a key can use.
var prefixFuncs = template.FuncMap{
	"print":  boundedPrint,
	"printf": boundedPrintf,
}

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
// {{.Hostname}}, {{.Year}}, {{.Month}}, {{.Day}} and {{.Hour}}, constants,
// pipelines, parentheses, {{if}}/{{else if}}/{{else}} and the functions in
// PrefixFuncs. Everything that can loop, recurse or reuse a computed value
// is refused: {{range}}, {{with}}, {{define}}, {{template}}, {{block}},
// variable declarations and assignments, and the other built-in functions.
// A template is at most MaxPrefixTemplateLen bytes, a printf width or
// precision at most MaxKeyLen (and never "*"), and a print or printf result
// at most 4*MaxKeyLen bytes, so a template's execution time and memory are
// bounded by its length.
//
// The template is executed once against sample data, so an unknown field
// or a run-time error is reported here. Every error wraps ErrBadPrefix.
func ParsePrefix(s string) (*Prefix, error) {
	if s == "" {
		s = DefaultPrefix
	}
	if len(s) > MaxPrefixTemplateLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrBadPrefix, MaxPrefixTemplateLen)
	}
	fallback := template.Must(template.New("prefix").Parse(DefaultPrefix))
	t, err := template.New("prefix").Option("missingkey=error").Funcs(prefixFuncs).Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPrefix, err)
	}
	if len(t.Templates()) > 1 {
		return nil, fmt.Errorf("%w: {{define}} and {{block}} are not allowed in a prefix", ErrBadPrefix)
	}
	if err := checkNode(t.Tree.Root); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPrefix, err)
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

// checkNode refuses the parts of text/template a prefix may not use (see
// ParsePrefix). It allows by node type, so a construct added to
// text/template later is refused until it is reviewed here.
func checkNode(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNode(c); err != nil {
				return err
			}
		}
		return nil
	case *parse.TextNode, *parse.CommentNode, *parse.FieldNode, *parse.DotNode,
		*parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode:
		return nil
	case *parse.ActionNode:
		return checkNode(n.Pipe)
	case *parse.IfNode:
		if err := checkNode(n.Pipe); err != nil {
			return err
		}
		if err := checkNode(n.List); err != nil {
			return err
		}
		return checkNode(n.ElseList)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		if len(n.Decl) > 0 {
			return errors.New("variables ($x := ..., $x = ...) are not allowed in a prefix")
		}
		for _, c := range n.Cmds {
			if err := checkNode(c); err != nil {
				return err
			}
		}
		return nil
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := checkNode(a); err != nil {
				return err
			}
		}
		return nil
	case *parse.ChainNode:
		return checkNode(n.Node)
	case *parse.IdentifierNode:
		if !allowedFuncs[n.Ident] {
			return fmt.Errorf("function %q is not allowed in a prefix (allowed: %s)", n.Ident, PrefixFuncs)
		}
		return nil
	case *parse.VariableNode:
		// Without declarations only $ (the data) can appear.
		if len(n.Ident) == 0 || n.Ident[0] != "$" {
			return errors.New("variables are not allowed in a prefix")
		}
		return nil
	case *parse.RangeNode:
		return errors.New("{{range}} is not allowed in a prefix")
	case *parse.WithNode:
		return errors.New("{{with}} is not allowed in a prefix (use {{if}})")
	case *parse.TemplateNode:
		return errors.New("{{template}} and {{block}} are not allowed in a prefix")
	}
	return fmt.Errorf("%s is not allowed in a prefix", n)
}

var (
	errPrintfWidth = fmt.Errorf(`a printf width or precision over %d, or "*", is not allowed in a prefix`, maxPrintfWidth)
	errLongResult  = fmt.Errorf("print or printf result longer than %d bytes", maxRender)
)

// boundedPrintf is fmt.Sprintf with every width and precision of format at
// most maxPrintfWidth and a result of at most maxRender bytes.
func boundedPrintf(format string, args ...any) (string, error) {
	if !formatBounded(format) {
		return "", errPrintfWidth
	}
	s := fmt.Sprintf(format, args...)
	if len(s) > maxRender {
		return "", errLongResult
	}
	return s, nil
}

// boundedPrint is fmt.Sprint with a result of at most maxRender bytes.
func boundedPrint(args ...any) (string, error) {
	s := fmt.Sprint(args...)
	if len(s) > maxRender {
		return "", errLongResult
	}
	return s, nil
}

// formatBounded reports whether no verb of a fmt format has a "*" or a
// number (width, precision or argument index) over maxPrintfWidth. A verb
// is "%", then flags, digits, ".", "[", "]" and "*", then one rune.
func formatBounded(format string) bool {
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		n := 0 // the number being read
		for i++; i < len(format) && strings.IndexByte("+-# 0123456789.[]*", format[i]) >= 0; i++ {
			switch c := format[i]; {
			case c == '*':
				return false
			case '0' <= c && c <= '9':
				n = n*10 + int(c-'0')
				if n > maxPrintfWidth {
					return false
				}
			default:
				n = 0
			}
		}
	}
	return true
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
