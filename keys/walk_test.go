package keys

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParts(t *testing.T) {
	tests := []struct {
		tmpl string
		want []Part
		err  bool
	}{
		{"", []Part{{Field: "Name"}, {Text: "/"}, {Field: "Year"}, {Text: "/"}, {Field: "Month"}, {Text: "/"}, {Field: "Day"}, {Text: "/"}}, false},
		{"logs/{{.Hostname}}/{{/* c */}}x-{{.ID}}", []Part{{Text: "logs/"}, {Field: "Hostname"}, {Text: "/x-"}, {Field: "ID"}}, false},
		{"container={{.Name}}/date={{.Year}}-{{.Month}}-{{.Day}}/", []Part{{Text: "container="}, {Field: "Name"}, {Text: "/date="}, {Field: "Year"}, {Text: "-"}, {Field: "Month"}, {Text: "-"}, {Field: "Day"}, {Text: "/"}}, false},
		{"plain/", []Part{{Text: "plain/"}}, false},
		{`{{if .Name}}{{.Name}}{{else}}x{{end}}/`, nil, true},
		{`{{printf "%s" .Name}}/`, nil, true},
		{`{{"const"}}/`, nil, true},
		{`{{.Name | print}}/`, nil, true},
	}
	for _, tt := range tests {
		p, err := ParsePrefix(tt.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tt.tmpl, err)
		}
		got, err := p.Parts()
		if tt.err {
			if !errors.Is(err, ErrNotWalkable) {
				t.Errorf("%q: err %v, want ErrNotWalkable", tt.tmpl, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: %+v, %v; want %+v", tt.tmpl, got, err, tt.want)
		}
	}
}

// TestPartsRenderAgree checks that joining the parts with FieldValue and
// CleanPrefix gives Render's output.
func TestPartsRenderAgree(t *testing.T) {
	for _, tmpl := range []string{"", "a/{{.Hostname}}/{{.ID}}-{{.Hour}}/", "{{.ImageName}}/{{.ImageID}}/{{.FullID}}/", "x/{{.DaemonName}}/{{.Name}}_", "../{{.Name}}//./"} {
		p, err := ParsePrefix(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := p.Parts()
		if err != nil {
			t.Fatal(err)
		}
		s := ""
		for _, pt := range parts {
			if pt.Field != "" {
				s += FieldValue(pt.Field, sampleInfo, sampleTime)
			} else {
				s += pt.Text
			}
		}
		if got, want := CleanPrefix(s), p.Render(sampleInfo, sampleTime); got != want {
			t.Errorf("%q: parts give %q, Render %q", tmpl, got, want)
		}
	}
}

func TestParseFilePart(t *testing.T) {
	first := time.Date(2026, 11, 27, 15, 44, 5, 123e6, time.UTC)
	for _, tt := range []struct {
		id  string
		seq uint64
	}{{"3f2a9c1b7d4e5f60", 42}, {"", 0}, {"ab_c", 12345678901}, {"a-b", 7}} {
		name := FilePart(first, tt.id, tt.seq)
		f, ok := ParseFilePart("some/prefix/web-" + name)
		wantID := FilePart(first, tt.id, 0)[21:]
		wantID = wantID[:len(wantID)-len("_000000"+FileSuffix)]
		if !ok || !f.First.Equal(first) || f.Seq != tt.seq || f.ContainerID != wantID || f.Start != len("some/prefix/web-") {
			t.Errorf("%q: %+v %v", name, f, ok)
		}
	}
	for _, bad := range []string{"", "x.jsonl.zst", "20261127T154405.123Z_abc_12.jsonl.zst", "20261127T154405.123Z__000001.jsonl.zst", "2026112XT154405.123Z_a_000001.jsonl.zst", "20261127T154405.123Z_a_000001.jsonl", "20261127T154405.123Z_a_00000x.jsonl.zst"} {
		if f, ok := ParseFilePart(bad); ok {
			t.Errorf("%q parsed as %+v", bad, f)
		}
	}
}
