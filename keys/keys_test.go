package keys

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

var (
	testTime = time.Date(2026, time.January, 7, 5, 4, 3, 2e6, time.UTC)
	testInfo = Info{
		ContainerID:   "3f2a9c1b7d4e0123456789abcdef0123456789abcdef0123456789abcdef0123",
		ContainerName: "/web",
		ImageName:     "nginx:1.27",
		ImageID:       "sha256:aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899",
		DaemonName:    "docker",
		Hostname:      "node1",
	}
)

func TestParsePrefixFields(t *testing.T) {
	tests := []struct {
		tmpl string
		want string
	}{
		{"", "web/2026/01/07/"},
		{DefaultPrefix, "web/2026/01/07/"},
		{"{{.ID}}/", "3f2a9c1b7d4e/"},
		{"{{.FullID}}/", testInfo.ContainerID + "/"},
		{"{{.Name}}", "web"},
		{"{{.ImageName}}/", "nginx:1.27/"},
		{"{{.ImageID}}/", "aabbccddeeff/"},
		{"{{.ImageFullID}}/", testInfo.ImageID + "/"},
		{"{{.DaemonName}}/{{.Hostname}}/", "docker/node1/"},
		{"{{.Year}}-{{.Month}}-{{.Day}}T{{.Hour}}/", "2026-01-07T05/"},
		{"logs/", "logs/"},
		{"logs/{{.Name}}-", "logs/web-"},
		{"year={{.Year}}/month={{.Month}}/", "year=2026/month=01/"},
		{`{{if eq .Name "web"}}w{{else}}x{{end}}/`, "w/"},
		{`{{printf "%s_%s" .Name .ID}}/`, "web_3f2a9c1b7d4e/"},
		{`{{slice .FullID 0 2}}/{{.Name}}/`, "3f/web/"},
		{`{{if and .Hostname (ne .Hostname "x")}}{{.Hostname}}{{else}}nohost{{end}}/`, "node1/"},
		{`{{if eq .Name "db"}}db{{else if eq .Name "web"}}www{{end}}/`, "www/"},
		{`{{.Name | printf "%.2s"}}/{{len .Name}}/{{index .Name 0}}/`, "we/3/119/"},
		{`{{$.Name}}/{{not false}}/{{or "" .ID}}/`, "web/true/3f2a9c1b7d4e/"},
		{`{{print .Name "-" .Year}}/{{printf "%04d-%[1]x" 255}}/`, "web-2026/0255-ff/"},
		{`{{printf "%01024d" 7 | len}}/`, "1024/"},
		{`{{/* a comment */}}{{- .Name -}} /`, "web/"},
		{`{{define "prefix"}}{{.Name}}/{{end}}`, "web/"}, // redefines itself: no call, nothing to recurse
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			p, err := ParsePrefix(tt.tmpl)
			if err != nil {
				t.Fatalf("ParsePrefix(%q): %v", tt.tmpl, err)
			}
			if got := p.Render(testInfo, testTime); got != tt.want {
				t.Errorf("Render = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParsePrefixString(t *testing.T) {
	p, err := ParsePrefix("")
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != DefaultPrefix {
		t.Errorf("String() = %q, want %q", p.String(), DefaultPrefix)
	}
	p, err = ParsePrefix("x/{{.ID}}/")
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != "x/{{.ID}}/" {
		t.Errorf("String() = %q", p.String())
	}
}

func TestParsePrefixErrors(t *testing.T) {
	tests := []struct {
		tmpl string
		frag string // part of the message
	}{
		{"{{.Foo}}/", "Foo"},
		{"{{.name}}/", "name"},
		{"{{.Name", "unclosed action"},
		{"{{end}}", "unexpected {{end}}"},
		{"{{nosuchfunc .Name}}", "nosuchfunc"},
		{"{{index .Name 99}}", "index out of range"},
		{"{{.Name.Foo}}", "Foo"},
		{strings.Repeat(`{{printf "%01000d" 1}}`, 5), "renders more than 4096 bytes"},
		{strings.Repeat("a", MaxPrefixTemplateLen+1), "longer than 4096 bytes"},
		// loops
		{`{{range $i := 100000}}{{end}}`, "{{range}} is not allowed"},
		{`{{if .Name}}{{range .}}{{end}}{{end}}`, "{{range}} is not allowed"},
		{`{{if .Name}}{{else}}{{range 5}}{{end}}{{end}}`, "{{range}} is not allowed"},
		{`{{with .ID}}{{.}}{{end}}`, "{{with}} is not allowed in a prefix (use {{if}})"},
		{`{{with printf "%s%s" . .}}{{with printf "%s%s" . .}}{{.}}{{end}}{{end}}`, "{{with}} is not allowed"},
		// recursion and template calls
		{`{{define "x"}}{{range 5}}{{end}}{{end}}a/`, "{{define}} and {{block}} are not allowed"},
		{`{{block "x" .}}{{range 5}}{{end}}{{end}}a/`, "{{define}} and {{block}} are not allowed"},
		{`{{define "x"}}a{{end}}{{template "x"}}`, "{{define}} and {{block}} are not allowed"},
		{`{{define "x"}}{{template "x"}}{{end}}`, "{{define}} and {{block}} are not allowed"},
		{`{{define "a"}}{{template "b"}}{{template "b"}}{{end}}{{define "b"}}x{{end}}{{template "a"}}`, "{{define}} and {{block}} are not allowed"},
		{`{{define "prefix"}}{{template "prefix"}}{{end}}`, "{{template}} and {{block}} are not allowed"},
		{`{{define "prefix"}}{{if .Name}}{{template "prefix" .}}{{end}}{{end}}`, "{{template}} and {{block}} are not allowed"},
		{`{{template "prefix"}}`, "{{template}} and {{block}} are not allowed"},
		{`{{template "nosuch"}}`, "{{template}} and {{block}} are not allowed"},
		// reuse of a computed value
		{`{{$a := printf "%01000d" 1}}{{$a = printf "%s%s" $a $a}}`, "variables ($x := ..., $x = ...) are not allowed"},
		{`{{$x := .Name}}{{$x}}`, "variables ($x := ..., $x = ...) are not allowed"},
		{`{{if $x := .Name}}{{$x}}{{end}}`, "variables ($x := ..., $x = ...) are not allowed"},
		// functions that multiply their input, and printf bounds
		{`{{js (js (js .Name))}}`, `function "js" is not allowed in a prefix (allowed: print, printf, index, slice, len, eq, ne, lt, le, gt, ge, and, or, not)`},
		{`{{html .Name}}`, `function "html" is not allowed`},
		{`{{.Name | urlquery}}`, `function "urlquery" is not allowed`},
		{`{{call .Name}}`, `function "call" is not allowed`},
		{`{{println .Name}}`, `function "println" is not allowed`},
		{`{{printf "%05000d" 1}}`, `a printf width or precision over 1024, or "*", is not allowed`},
		{`{{printf "%.2000f" 1.5}}`, "a printf width or precision over 1024"},
		{`{{printf "%*d" 5000 1}}`, "a printf width or precision over 1024"},
		{`{{printf "%[1]*d" 5000 1}}`, "a printf width or precision over 1024"},
		{`{{printf "%99999999999999999999d" 1}}`, "a printf width or precision over 1024"},
		{`{{printf (print "%0" "5000d") 1}}`, "a printf width or precision over 1024"},
		{`{{printf "%s%s%s%s%s" (printf "%01000d" 1) (printf "%01000d" 1) (printf "%01000d" 1) (printf "%01000d" 1) (printf "%01000d" 1) | len}}`, "print or printf result longer than 4096 bytes"},
		{`{{print (printf "%01000d" 1) (printf "%01000d" 1) (printf "%01000d" 1) (printf "%01000d" 1) (printf "%01000d" 1) | len}}`, "print or printf result longer than 4096 bytes"},
		{`{{printf "%x" (printf "%x" (printf "%x" (printf "%01000d" 1))) | len}}`, "print or printf result longer than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			p, err := ParsePrefix(tt.tmpl)
			if err == nil {
				t.Fatalf("ParsePrefix(%q) = %v, want error", tt.tmpl, p)
			}
			if !errors.Is(err, ErrBadPrefix) {
				t.Errorf("error %v does not wrap ErrBadPrefix", err)
			}
			if !strings.Contains(err.Error(), tt.frag) {
				t.Errorf("error %q does not mention %q", err, tt.frag)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

// A template that only fails for some data falls back to DefaultPrefix.
func TestRenderFallback(t *testing.T) {
	p, err := ParsePrefix(`{{if eq .Name "x"}}{{index .Name 5}}{{end}}custom/`)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Render(testInfo, testTime); got != "custom/" {
		t.Errorf("Render = %q, want custom/", got)
	}
	info := testInfo
	info.ContainerName = "/x"
	if got := p.Render(info, testTime); got != "x/2026/01/07/" {
		t.Errorf("Render = %q, want the default prefix", got)
	}
}

func TestRenderTimeIsUTC(t *testing.T) {
	p, err := ParsePrefix("{{.Year}}/{{.Month}}/{{.Day}}/{{.Hour}}/")
	if err != nil {
		t.Fatal(err)
	}
	loc := time.FixedZone("UTC+3", 3*3600)
	first := time.Date(2027, time.January, 1, 1, 30, 0, 0, loc) // 2026-12-31 22:30 UTC
	if got := p.Render(testInfo, first); got != "2026/12/31/22/" {
		t.Errorf("Render = %q, want 2026/12/31/22/", got)
	}
}

func TestRenderHostile(t *testing.T) {
	long := strings.Repeat("n", 300)
	tests := []struct {
		name string
		tmpl string
		info func(*Info)
		want string
	}{
		{"dotdot name", "{{.Name}}/x/", func(i *Info) { i.ContainerName = "/.." }, "__/x/"},
		{"dot name", "{{.Name}}/x/", func(i *Info) { i.ContainerName = "/." }, "_/x/"},
		{"dotdot slash name", "{{.Name}}/x/", func(i *Info) { i.ContainerName = "../" }, "__/x/"},
		{"traversal in image", "{{.ImageName}}/", func(i *Info) { i.ImageName = "../../etc/passwd" }, "__/__/etc/passwd/"},
		{"slash name", "{{.Name}}/x/", func(i *Info) { i.ContainerName = "/" }, "x/"},
		{"double slash name", "{{.Name}}/x/", func(i *Info) { i.ContainerName = "//a//b//" }, "a/b/x/"},
		{"empty name", "{{.Name}}/{{.Year}}/", func(i *Info) { i.ContainerName = "" }, "2026/"},
		{"empty all", "{{.Name}}/{{.ImageName}}/{{.Hostname}}/", func(i *Info) { *i = Info{} }, ""},
		{"empty middle", "a/{{.Hostname}}/b/", func(i *Info) { i.Hostname = "" }, "a/b/"},
		{"control chars", "{{.Name}}/", func(i *Info) { i.ContainerName = "/a\x00b\tc\nd\x7fe\u0085f\u009fg" }, "a_b_c_d_e_f_g/"},
		{"non-UTF-8", "{{.Name}}/", func(i *Info) { i.ContainerName = "/a\xffb\xc3c\xe2\x82" }, "a_b_c__/"},
		{"valid UTF-8 kept", "{{.Name}}/", func(i *Info) { i.ContainerName = "/日本\uFFFD€" }, "日本\uFFFD€/"},
		{"noncharacters", "{{.Name}}/", func(i *Info) { i.ContainerName = "/a\uFFFEb\uFFFF" }, "a_b_/"},
		{"300-byte name", "{{.Name}}/", func(i *Info) { i.ContainerName = "/" + long }, long + "/"},
		{"only slash", "/", nil, ""},
		{"only slashes", "///", nil, ""},
		{"leading slash", "/logs/{{.Name}}/", nil, "logs/web/"},
		{"dot template", "./{{.Name}}/./", nil, "_/web/_/"},
		{"name prefix dot", "logs/.", nil, "logs/_"},
		{"name prefix dotdot", "logs/..", nil, "logs/__"},
		{"dots inside names", "a.b/..c/...", nil, "a.b/..c/..."},
		{"short ids", "{{.ID}}/{{.ImageID}}/", func(i *Info) { i.ContainerID = "abc"; i.ImageID = "sha256:de" }, "abc/de/"},
		{"image id without algorithm", "{{.ImageID}}/", func(i *Info) { i.ImageID = "0123456789abcdef" }, "0123456789ab/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePrefix(tt.tmpl)
			if err != nil {
				t.Fatalf("ParsePrefix(%q): %v", tt.tmpl, err)
			}
			info := testInfo
			if tt.info != nil {
				tt.info(&info)
			}
			got := p.Render(info, testTime)
			if got != tt.want {
				t.Errorf("Render = %q, want %q", got, tt.want)
			}
			checkPrefix(t, got)
		})
	}
}

func TestRenderBounded(t *testing.T) {
	p, err := ParsePrefix("{{.Name}}/{{.Name}}/{{.Name}}/")
	if err != nil {
		t.Fatal(err)
	}
	info := testInfo
	info.ContainerName = "/" + strings.Repeat("é", 400) // 800 bytes
	got := p.Render(info, testTime)
	if len(got) > MaxKeyLen {
		t.Fatalf("len = %d", len(got))
	}
	if !strings.HasSuffix(got, "/") {
		t.Errorf("folder prefix lost its trailing slash: ...%q", got[len(got)-10:])
	}
	checkPrefix(t, got)

	// A template that writes far more than a key can hold is cut, not refused.
	p, err = ParsePrefix(`{{if ne .Name "sample"}}{{.Name}}` + strings.Repeat(`{{printf "%01000d" 1}}`, 10) + `{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	got = p.Render(testInfo, testTime)
	if len(got) != MaxKeyLen || !strings.HasPrefix(got, "web000") {
		t.Errorf("Render: len %d, %q...", len(got), got[:10])
	}
}

func TestRenderConcurrent(t *testing.T) {
	p, err := ParsePrefix("{{.Name}}/{{.Hour}}/")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			info := testInfo
			info.ContainerName = "/c" + string(rune('a'+g))
			want := "c" + string(rune('a'+g)) + "/05/"
			for i := 0; i < 200; i++ {
				if got := p.Render(info, testTime); got != want {
					t.Errorf("Render = %q, want %q", got, want)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

func TestFilePart(t *testing.T) {
	first := time.Date(2026, time.November, 27, 15, 44, 5, 123456789, time.UTC)
	tests := []struct {
		name  string
		first time.Time
		id    string
		seq   uint64
		want  string
	}{
		{"example", first, testInfo.ContainerID, 42, "20261127T154405.123Z_3f2a9c1b7d4e_000042.jsonl.zst"},
		{"zero", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "abc", 0, "20260102T030405.000Z_abc_000000.jsonl.zst"},
		{"seven digits", first, testInfo.ContainerID, 1234567, "20261127T154405.123Z_3f2a9c1b7d4e_1234567.jsonl.zst"},
		{"max seq", first, testInfo.ContainerID, 1<<64 - 1, "20261127T154405.123Z_3f2a9c1b7d4e_18446744073709551615.jsonl.zst"},
		{"local time", first.In(time.FixedZone("X", -5*3600)), testInfo.ContainerID, 1, "20261127T154405.123Z_3f2a9c1b7d4e_000001.jsonl.zst"},
		{"hostile id", first, "../a/\x00é", 1, "20261127T154405.123Z____a_____000001.jsonl.zst"},
		{"empty id", first, "", 1, "20261127T154405.123Z___000001.jsonl.zst"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FilePart(tt.first, tt.id, tt.seq); got != tt.want {
				t.Errorf("FilePart = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFilePartSortsByTime(t *testing.T) {
	base := time.Date(2026, time.December, 31, 23, 59, 59, 998e6, time.UTC)
	prev := FilePart(base, testInfo.ContainerID, 999999)
	for i := 1; i < 5000; i++ {
		cur := FilePart(base.Add(time.Duration(i)*time.Millisecond), testInfo.ContainerID, uint64(i%7))
		if cur <= prev {
			t.Fatalf("%q sorts before %q", cur, prev)
		}
		prev = cur
	}
	a := FilePart(base, testInfo.ContainerID, 9)
	b := FilePart(base, testInfo.ContainerID, 10)
	if a >= b {
		t.Errorf("%q does not sort before %q", a, b)
	}
}

func TestKey(t *testing.T) {
	fp := FilePart(testTime, testInfo.ContainerID, 42)
	long := strings.Repeat("n", 300)
	tests := []struct {
		name   string
		prefix string
		fp     string
		want   string
	}{
		{"default", "web/2026/01/07/", fp, "web/2026/01/07/" + fp},
		{"empty prefix", "", fp, fp},
		{"name prefix", "logs/web-", fp, "logs/web-" + fp},
		{"only slash", "/", fp, fp},
		{"leading slash", "/a/b/", fp, "a/b/" + fp},
		{"double slashes", "a//b///", fp, "a/b/" + fp},
		{"dotdot", "../", fp, "__/" + fp},
		{"dot", "./a/../", fp, "_/a/__/" + fp},
		{"control", "a\x01\x1b[31m/", fp, "a__[31m/" + fp},
		{"non-UTF-8", "\xff\xfe/", fp, "__/" + fp},
		{"300-byte elements", long + "/" + long + "/" + long + "/", fp, long + "/" + long + "/" + long + "/" + fp},
		{"hostile file part", "a/", "/../x//y/", "a/__/x/y"},
		{"empty file part", "a/", "", "a/_"},
		{"slash file part", "a/", "/", "a/_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Key(tt.prefix, tt.fp)
			if got != tt.want {
				t.Errorf("Key(%q, %q) = %q, want %q", tt.prefix, tt.fp, got, tt.want)
			}
			checkKey(t, got, sanitizeKey(tt.fp))
		})
	}
}

func TestKeyBounded(t *testing.T) {
	fp := FilePart(testTime, testInfo.ContainerID, 42)
	tests := []struct {
		name    string
		prefix  string
		wantDir bool
	}{
		{"ascii folder", strings.Repeat("a", 2000) + "/", true},
		{"ascii name prefix", strings.Repeat("a", 2000), false},
		{"many folders", strings.Repeat("ab/", 700), true},
		{"two-byte runes", strings.Repeat("é", 1000) + "/", true},
		{"three-byte runes", strings.Repeat("€", 1000), false},
		{"four-byte runes", strings.Repeat("𝄞", 500) + "/", true},
		{"dots at the cut", strings.Repeat("a/", 480) + strings.Repeat("..", 100) + "/", true},
		{"exactly fits", strings.Repeat("a", MaxKeyLen-len(fp)-1) + "/", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Key(tt.prefix, fp)
			checkKey(t, got, fp)
			prefix := strings.TrimSuffix(got, fp)
			if tt.wantDir && !strings.HasSuffix(prefix, "/") {
				t.Errorf("prefix lost its trailing slash: ...%q", prefix[max(0, len(prefix)-10):])
			}
			if len(got) < MaxKeyLen-4 {
				t.Errorf("key trimmed more than needed: %d bytes", len(got))
			}
		})
	}
	if got := Key(strings.Repeat("a", MaxKeyLen-len(fp)-1)+"/", fp); len(got) != MaxKeyLen {
		t.Errorf("a key of exactly MaxKeyLen bytes was trimmed to %d", len(got))
	}

	// A file part longer than a key keeps its end.
	hugeFP := strings.Repeat("x", 2000) + "_end.jsonl.zst"
	got := Key("a/", hugeFP)
	if len(got) != MaxKeyLen || !strings.HasSuffix(got, "_end.jsonl.zst") {
		t.Errorf("huge file part: len %d, ...%q", len(got), got[len(got)-20:])
	}
}

// checkPrefix asserts the invariants of a rendered prefix.
func checkPrefix(t *testing.T, p string) {
	t.Helper()
	if !utf8.ValidString(p) {
		t.Errorf("prefix %q is not valid UTF-8", p)
	}
	if len(p) > MaxKeyLen {
		t.Errorf("prefix has %d bytes", len(p))
	}
	if strings.HasPrefix(p, "/") {
		t.Errorf("prefix %q starts with /", p)
	}
	elems := strings.Split(strings.TrimSuffix(p, "/"), "/")
	if p == "" {
		elems = nil
	}
	for _, e := range elems {
		if e == "" || e == "." || e == ".." {
			t.Errorf("prefix %q has element %q", p, e)
		}
	}
	checkChars(t, p)
}

// checkKey asserts the invariants of a key.
func checkKey(t *testing.T, k, fp string) {
	t.Helper()
	if !utf8.ValidString(k) {
		t.Errorf("key %q is not valid UTF-8", k)
	}
	if len(k) > MaxKeyLen {
		t.Errorf("key has %d bytes", len(k))
	}
	if strings.HasPrefix(k, "/") {
		t.Errorf("key %q starts with /", k)
	}
	for _, e := range strings.Split(k, "/") {
		if e == "" || e == "." || e == ".." {
			t.Errorf("key %q has element %q", k, e)
		}
	}
	if fp != "" && !strings.HasSuffix(k, fp) {
		t.Errorf("key %q does not end with %q", k, fp)
	}
	checkChars(t, k)
}

func checkChars(t *testing.T, s string) {
	t.Helper()
	for _, r := range s {
		if r < 0x20 || (0x7f <= r && r <= 0x9f) || r == 0xfffe || r == 0xffff {
			t.Errorf("%q contains %U", s, r)
		}
	}
}

// The costliest templates ParsePrefix accepts stay cheap: each print or
// printf result is bounded, nothing can loop, recurse or reuse a value, and
// the source is bounded, so memory and time grow at most linearly with it.
func TestPrefixCostBounded(t *testing.T) {
	const action = `{{len (print (printf "%01024d" 1) (printf "%01024d" 1) (printf "%01024d" 1) (printf "%01024d" 1))}}`
	src := strings.Repeat(action, MaxPrefixTemplateLen/len(action))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	p, err := ParsePrefix(src)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if got := p.Render(testInfo, testTime); !strings.HasPrefix(got, "4096") {
			t.Fatalf("Render = %.20q", got)
		}
	}
	took := time.Since(start)
	runtime.ReadMemStats(&after)
	// 11 executions of about 40 actions, each building 8 KiB of strings.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("ParsePrefix and 10 Renders allocated %d bytes", alloc)
	}
	if took > 5*time.Second {
		t.Errorf("ParsePrefix and 10 Renders took %v", took)
	}
}

// A bound that only data can cross is checked at Render: the prefix falls
// back to DefaultPrefix.
func TestRenderBoundsFallBack(t *testing.T) {
	p, err := ParsePrefix(`{{if ne .Name "sample"}}{{printf (print "%0" (len .FullID) "00d") 1}}{{end}}x/`)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Render(testInfo, testTime); got != "web/2026/01/07/" {
		t.Errorf("Render = %q, want the default prefix", got)
	}
}
