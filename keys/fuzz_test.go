package keys

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func FuzzKey(f *testing.F) {
	f.Add("web/2026/01/07/", "/web", "3f2a9c1b7d4e0123", int64(1795795445123), uint64(42), "")
	f.Add("../", "/..", "", int64(0), uint64(0), "x")
	f.Add("/", "/", "/", int64(-1), uint64(1<<63), "/")
	f.Add("\x00\xff/./", "a\x7f\u0085", "\xc3", int64(253402300799999), uint64(999999), "../../")
	f.Add(strings.Repeat("é", 600)+"/", strings.Repeat("n", 300), "id", int64(1), uint64(7), strings.Repeat("€", 400))
	// Templates that loop, recurse, reuse values or grow: refused or bounded.
	for _, tmpl := range []string{
		`{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`,
		`{{define "prefix"}}{{template "prefix"}}{{end}}`,
		`{{block "b" .}}{{.Name}}{{end}}`,
		`{{range $i := 1000000000}}{{end}}`,
		`{{with printf "%s%s" . .}}{{with printf "%s%s" . .}}{{.}}{{end}}{{end}}`,
		`{{$a := printf "%01000d" 1}}{{$a = printf "%s%s" $a $a}}{{$a}}`,
		`{{js (js (js (js (printf "%01000s" "\\"))))}}`,
		`{{printf "%x" (printf "%x" (printf "%x" (printf "%01024d" 1)))}}`,
		`{{printf (print "%0" (len .FullID) "00d") 1}}`,
		`{{if eq .Name "x"}}{{slice .FullID 0 2}}{{else}}{{.Name | printf "%.3s"}}{{end}}/`,
	} {
		f.Add(tmpl, "web", "3f2a9c1b7d4e", int64(0), uint64(1), "f")
	}
	f.Fuzz(func(t *testing.T, prefix, name, id string, ms int64, seq uint64, rawFP string) {
		first := time.UnixMilli(ms)

		// Keys built from FilePart end with it exactly.
		fp := FilePart(first, id, seq)
		if sanitizeKey(fp) != fp {
			t.Fatalf("FilePart %q is not clean", fp)
		}
		k := Key(prefix, fp)
		checkKey(t, k, fp)
		if Key(k[:len(k)-len(fp)], fp) != k {
			t.Errorf("Key is not idempotent on its own prefix: %q", k)
		}

		// Keys built from any file part end with its sanitized form.
		sfp := sanitizeKey(rawFP)
		k = Key(prefix, rawFP)
		if sfp == "" {
			sfp = "_"
		}
		if len(sfp) <= MaxKeyLen {
			checkKey(t, k, sfp)
		} else {
			checkKey(t, k, "")
		}

		// A rendered prefix is clean and keeps the key invariants.
		p, err := ParsePrefix("{{.Name}}/" + "{{.ID}}/{{.ImageID}}/")
		if err != nil {
			t.Fatal(err)
		}
		rp := p.Render(Info{ContainerName: name, ContainerID: id, ImageID: prefix}, first)
		checkPrefix(t, rp)
		checkKey(t, Key(rp, fp), fp)

		// The prefix as a template: either refused with a one-line error
		// or rendered cleanly.
		if p, err := ParsePrefix(prefix); err == nil {
			checkPrefix(t, p.Render(Info{ContainerName: name, ContainerID: id}, first))
		} else if !errors.Is(err, ErrBadPrefix) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ParsePrefix(%q): %q", prefix, err)
		}
	})
}
