package keys

import (
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

		// The prefix as a template: either refused or rendered cleanly.
		if p, err := ParsePrefix(prefix); err == nil {
			checkPrefix(t, p.Render(Info{ContainerName: name, ContainerID: id}, first))
		}
	})
}
