package keys

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template/parse"
	"time"
)

// Part is one piece of a walked prefix template: literal text, or one plain
// field reference such as {{.Name}}. Exactly one of Text and Field is set.
type Part struct {
	Text  string // literal text
	Field string // field name: ID, FullID, Name, ImageName, ImageID, ImageFullID, DaemonName, Hostname, Year, Month, Day or Hour
}

// ErrNotWalkable is wrapped by the error Parts returns for a template that
// does more than put literal text and fields side by side.
var ErrNotWalkable = errors.New("keys: prefix template cannot be walked")

// WalkableForm says which templates Parts accepts, for error messages.
const WalkableForm = "literal text and plain fields such as {{.Name}}/{{.Year}}/{{.Month}}/{{.Day}}/ (no {{if}}, functions or pipelines)"

// Parts returns the template as a sequence of literal text and plain field
// references, adjacent texts merged, comments dropped, which a reader turns
// into the key prefixes to list. A template that uses anything else
// ({{if}}, a function, a pipeline, a constant) returns an error wrapping
// ErrNotWalkable that names the first such action. Parts is safe for
// concurrent use.
func (p *Prefix) Parts() ([]Part, error) {
	var parts []Part
	for _, n := range p.tmpl.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			if len(parts) > 0 && parts[len(parts)-1].Field == "" {
				parts[len(parts)-1].Text += string(n.Text)
			} else {
				parts = append(parts, Part{Text: string(n.Text)})
			}
			continue
		case *parse.CommentNode:
			continue
		case *parse.ActionNode:
			if f, ok := plainField(n); ok {
				parts = append(parts, Part{Field: f})
				continue
			}
		}
		return nil, fmt.Errorf("%w: %s: the reader understands %s", ErrNotWalkable, n, WalkableForm)
	}
	return parts, nil
}

// plainField reports the field name of an action that is exactly {{.Field}}.
func plainField(a *parse.ActionNode) (string, bool) {
	if a.Pipe == nil || len(a.Pipe.Decl) > 0 || len(a.Pipe.Cmds) != 1 || len(a.Pipe.Cmds[0].Args) != 1 {
		return "", false
	}
	f, ok := a.Pipe.Cmds[0].Args[0].(*parse.FieldNode)
	if !ok || len(f.Ident) != 1 {
		return "", false
	}
	return f.Ident[0], true
}

// FieldValue returns what the template field named field renders to for a
// container and a segment's first record time, before sanitizing: the
// same value Render uses. An unknown field gives "".
func FieldValue(field string, info Info, first time.Time) string {
	f := newFields(info, first)
	switch field {
	case "ID":
		return f.ID
	case "FullID":
		return f.FullID
	case "Name":
		return f.Name
	case "ImageName":
		return f.ImageName
	case "ImageID":
		return f.ImageID
	case "ImageFullID":
		return f.ImageFullID
	case "DaemonName":
		return f.DaemonName
	case "Hostname":
		return f.Hostname
	case "Year":
		return f.Year
	case "Month":
		return f.Month
	case "Day":
		return f.Day
	case "Hour":
		return f.Hour
	}
	return ""
}

// CleanPrefix sanitizes a prefix built outside Render (for example by a
// reader from Parts) the way Render sanitizes its output, so the two agree
// on every prefix that ends with "/".
func CleanPrefix(s string) string { return boundPrefix(sanitizePrefix(s), MaxKeyLen) }

// File describes an object's file part (see FilePart).
type File struct {
	First       time.Time // the segment's first record, in milliseconds, UTC
	ContainerID string    // the first 12 characters of the container id, as FilePart wrote them
	Seq         uint64    // the segment's sequence number
	// Start is the offset in the key where the file part begins: the key's
	// last element may start with text from the prefix template.
	Start int
}

// ParseFilePart parses the file part at the end of a key, as FilePart
// writes it. ok is false for any other name.
func ParseFilePart(key string) (f File, ok bool) {
	rest, found := strings.CutSuffix(key, FileSuffix)
	if !found {
		return File{}, false
	}
	i := strings.LastIndexByte(rest, '_')
	if i < 0 || len(rest)-i-1 < 6 {
		return File{}, false
	}
	seq, err := strconv.ParseUint(rest[i+1:], 10, 64)
	if err != nil {
		return File{}, false
	}
	rest = rest[:i]
	// The id is 1 to 12 characters of [0-9A-Za-z_]; Docker's are 12 hex
	// digits, tried first.
	for n := 12; n >= 1; n-- {
		start := len(rest) - n - 1 - len(fileTimeLayout)
		if start < 0 || rest[start+len(fileTimeLayout)] != '_' {
			continue
		}
		{
			t, err := time.Parse(fileTimeLayout, rest[start:start+len(fileTimeLayout)])
			if err != nil {
				continue
			}
			id := rest[len(rest)-n:]
			if strings.ContainsAny(id, "/") {
				continue
			}
			return File{First: t, ContainerID: id, Seq: seq, Start: start}, true
		}
	}
	return File{}, false
}
