package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/internal/loggen"
)

// queryPrefix is the Hive-style prefix README.md's "Query in place" section
// recommends; TestQueryInPlace requires the README to show it verbatim.
const queryPrefix = "container={{.Name}}/date={{.Year}}-{{.Month}}-{{.Day}}/"

// The literals of the README's DuckDB window query that TestQueryInPlace
// replaces with the values of its run (each must occur exactly once).
const (
	recipeDir       = "'my-logs/"
	recipeContainer = "'web'"
	recipeDayBefore = "DATE '2026-11-26'"
	recipeDay       = "DATE '2026-11-27'"
	recipeFrom      = "TIMESTAMPTZ '2026-11-27 15:00:00Z'"
	recipeUntil     = "TIMESTAMPTZ '2026-11-27 15:30:00Z'"
)

// TestQueryInPlace proves the README's DuckDB recipe on what the plugin
// really writes. Two containers log through the installed plugin into
// MinIO under queryPrefix: "web" interleaves stdout and stderr at 1,000
// lines/s with 1 s segments (several objects), "slow" writes a line every
// 2 s, so that its one segment holds several zstd frames (the writer ends a
// frame after 1 s without records). The objects
// are fetched with `aws s3 cp --recursive`, keeping their keys, and the
// recipe's SQL, read from README.md, runs over them in DuckDB through
// query/cmd/duckjson, which lives in its own Go module (query/go.mod)
// because DuckDB's Go bindings need cgo: the plugin's module stays cgo-free.
//
// It checks the recipe's counts by container, day and stream against what
// the generators wrote (and the days against each segment's first record),
// and the records its time window selects against the records the Go
// harness decodes from the same objects. It also reads both containers
// back with `s3logs logs --prefix`.
func TestQueryInPlace(t *testing.T) {
	duck := duckjsonBinary(t)
	view, counts, window := duckdbRecipe(t)
	cli := buildCLI(t)
	s := newSuite(t)

	bucket := s.bucketName("query")
	s.createBucket(t, bucket)
	newContainer := func(tag string, spec loggen.Spec, opts ...string) *container {
		c := &container{s: s, name: s.containerName(tag), bucket: bucket, spec: spec}
		c.prefix = "container=" + c.name + "/"
		c.run(t, append([]string{"prefix=" + queryPrefix}, opts...)...)
		return c
	}
	web := newContainer("qweb", loggen.Spec{Mode: loggen.ModeInterleave, Lines: 3000, Rate: 1000}, "segment-age=1s")
	slow := newContainer("qslow", loggen.Spec{Mode: loggen.ModeLines, Lines: 4, Rate: 0.5})

	// What each container wrote, and which keys hold it.
	type written struct {
		c                  *container
		out, err           []byte
		outLines, errLines int
	}
	var all []written
	keyOwner := map[string]*container{}
	for _, c := range []*container{web, slow} {
		exited := c.wait(t)
		out, errOut := loggen.Expected(c.spec, c.spec.Count())
		objs, _ := c.waitContent(t, exited, exited.Add(slowDeadline), out, errOut)
		for _, o := range objs {
			keyOwner[o.Key] = c
		}
		all = append(all, written{c, out, errOut, bytes.Count(out, []byte("\n")), bytes.Count(errOut, []byte("\n"))})
		// The reader walks the Hive-style template too.
		gotOut, gotErr := s.cli(t, cli, bucket, "logs", "--prefix", queryPrefix, c.name)
		if !bytes.Equal(gotOut, out) || !bytes.Equal(gotErr, errOut) {
			t.Errorf("s3logs logs --prefix %s %s:\nstdout: %s\nstderr: %s", queryPrefix, c.name, diff(gotOut, out), diff(gotErr, errOut))
		}
	}

	// The objects as DuckDB will read them: fetched with the aws CLI into
	// a folder that keeps the key layout.
	dir := t.TempDir()
	if _, _, err := run(context.Background(), s.awsEnv, "aws", "s3", "cp", "--recursive", "--only-show-errors",
		"--endpoint-url", s.minio.Endpoint, "s3://"+bucket+"/", dir); err != nil {
		t.Fatal(err)
	}
	recs, frames := decodeTree(t, s.zdec, dir, keyOwner)
	t.Logf("%d objects, %d records; zstd frames by container: %v", len(keyOwner), len(recs), frames)
	if frames[slow.name] < 2 {
		t.Errorf("%s: its objects hold %d zstd frames, want a segment of several (one per idle-separated line)", slow.name, frames[slow.name])
	}

	// Counts by container, day and stream.
	want := map[string]int{}
	for _, r := range recs {
		want[r.container+" "+r.date+" "+r.stream]++
	}
	perStream := map[string]int{}
	for k, n := range want {
		f := strings.Fields(k)
		perStream[f[0]+" "+f[2]] += n
	}
	for _, w := range all {
		if perStream[w.c.name+" stdout"] != w.outLines || perStream[w.c.name+" stderr"] != w.errLines {
			t.Fatalf("%s: objects hold %d stdout and %d stderr records, the generator wrote %d and %d lines",
				w.c.name, perStream[w.c.name+" stdout"], perStream[w.c.name+" stderr"], w.outLines, w.errLines)
		}
	}
	view = substitute(t, view, recipeDir, "'"+filepath.ToSlash(dir)+"/")
	got := map[string]int{}
	for _, row := range duckdb(t, duck, view, counts) {
		var r struct {
			Container, Date, Stream string
			Records                 int
		}
		if err := json.Unmarshal(row, &r); err != nil {
			t.Fatalf("count row %s: %v", row, err)
		}
		got[r.Container+" "+r.Date+" "+r.Stream] += r.Records
	}
	if !maps.Equal(got, want) {
		t.Errorf("DuckDB counts by container, date, stream:\n got  %v\n want %v", got, want)
	} else {
		t.Logf("DuckDB counts by container, date, stream: %v", got)
	}

	// A time window over web's stderr, its bounds in gaps between records
	// (so that DuckDB's microseconds cannot move a record across one).
	var webRecs []queryRecord
	for _, r := range recs {
		if r.container == web.name {
			webRecs = append(webRecs, r)
		}
	}
	sort.SliceStable(webRecs, func(i, j int) bool { return webRecs[i].time.Before(webRecs[j].time) })
	from := gapBound(t, webRecs, len(webRecs)/3)
	until := gapBound(t, webRecs, 2*len(webRecs)/3)
	if !from.Before(until) {
		t.Fatalf("empty window [%s, %s)", from, until)
	}
	var wantRows []string
	stderrTotal := 0
	for _, r := range webRecs {
		if r.stream != "stderr" {
			continue
		}
		stderrTotal++
		if !r.time.Before(from) && r.time.Before(until) {
			row, _ := json.Marshal(map[string]string{"log": r.log, "time": r.time.Truncate(time.Microsecond).Format(time.RFC3339Nano)})
			wantRows = append(wantRows, string(row))
		}
	}
	if len(wantRows) == 0 || len(wantRows) == stderrTotal {
		t.Fatalf("window [%s, %s) selects %d of %d stderr records: a useless test", from, until, len(wantRows), stderrTotal)
	}
	literal := func(ts time.Time) string {
		return "TIMESTAMPTZ '" + ts.UTC().Format("2006-01-02 15:04:05.000000Z") + "'"
	}
	day := func(ts time.Time) string { return "DATE '" + ts.UTC().Format(time.DateOnly) + "'" }
	window = substitute(t, window, recipeContainer, "'"+web.name+"'")
	window = substitute(t, window, recipeDayBefore, day(from.AddDate(0, 0, -1)))
	window = substitute(t, window, recipeDay, day(until))
	window = substitute(t, window, recipeFrom, literal(from))
	window = substitute(t, window, recipeUntil, literal(until))
	var gotRows []string
	for _, row := range duckdb(t, duck, view, window) {
		var r map[string]string
		if err := json.Unmarshal(row, &r); err != nil {
			t.Fatalf("window row %s: %v", row, err)
		}
		norm, _ := json.Marshal(r)
		gotRows = append(gotRows, string(norm))
	}
	if !slices.Equal(gotRows, wantRows) {
		i := 0
		for i < len(gotRows) && i < len(wantRows) && gotRows[i] == wantRows[i] {
			i++
		}
		at := func(rows []string) string {
			if i < len(rows) {
				return rows[i]
			}
			return "(none)"
		}
		t.Errorf("DuckDB window [%s, %s) on %s stderr: %d rows, want %d; first difference at row %d:\n got  %s\n want %s",
			from, until, web.name, len(gotRows), len(wantRows), i, at(gotRows), at(wantRows))
	} else {
		t.Logf("DuckDB window [%s, %s): %d of %d stderr records, as decoded", from, until, len(gotRows), stderrTotal)
	}
}

// queryRecord is one record of the downloaded objects, with the container
// that wrote it and the day of its segment's first record (UTC).
type queryRecord struct {
	container, date, stream, log string
	time                         time.Time
}

// decodeTree decodes every object under dir (a copy of the bucket that
// keeps the keys). owner maps each key to the container that wrote it; the
// tree must hold exactly those keys. It returns the records in key order and
// the number of zstd frames of each container's objects.
func decodeTree(t *testing.T, dec *zstd.Decoder, dir string, owner map[string]*container) ([]queryRecord, map[string]int) {
	t.Helper()
	var keys []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		keys = append(keys, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	var listed []string
	for k := range owner {
		listed = append(listed, k)
	}
	slices.Sort(listed)
	if !slices.Equal(keys, listed) {
		t.Fatalf("aws s3 cp fetched %q, the listings have %q", keys, listed)
	}
	var recs []queryRecord
	frames := map[string]int{}
	for _, k := range keys {
		c := owner[k]
		raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := zstdFrames(raw)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		frames[c.name] += n
		body, err := dec.DecodeAll(raw, nil)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		first := len(recs)
		for line := range bytes.Lines(body) {
			var r record
			if err := json.Unmarshal(line, &r); err != nil {
				t.Fatalf("%s: %q: %v", k, line, err)
			}
			ts, err := time.Parse(time.RFC3339Nano, r.Time)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			recs = append(recs, queryRecord{container: c.name, stream: r.Stream, log: r.Log, time: ts})
		}
		if first == len(recs) {
			t.Fatalf("%s: no records", k)
		}
		date := recs[first].time.UTC().Format(time.DateOnly)
		for i := first; i < len(recs); i++ {
			recs[i].date = date
		}
	}
	return recs, frames
}

// zstdFrames counts the zstd frames (skippable ones included) in b, which
// must be whole frames.
func zstdFrames(b []byte) (int, error) {
	n := 0
	for len(b) > 0 {
		var h zstd.Header
		rest, err := h.DecodeAndStrip(b)
		if err != nil {
			return n, fmt.Errorf("frame %d: %w", n, err)
		}
		if h.Skippable {
			if uint64(len(rest)) < uint64(h.SkippableSize) {
				return n, fmt.Errorf("frame %d: skippable frame cut short", n)
			}
			b = rest[h.SkippableSize:]
			n++
			continue
		}
		for last := false; !last; {
			if len(rest) < 3 {
				return n, fmt.Errorf("frame %d: block header cut short", n)
			}
			v := uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16
			size := int(v >> 3)
			if (v>>1)&3 == 1 { // RLE: one byte repeated size times
				size = 1
			}
			last = v&1 == 1
			if len(rest) < 3+size {
				return n, fmt.Errorf("frame %d: block cut short", n)
			}
			rest = rest[3+size:]
		}
		if h.HasCheckSum {
			if len(rest) < 4 {
				return n, fmt.Errorf("frame %d: checksum cut short", n)
			}
			rest = rest[4:]
		}
		b = rest
		n++
	}
	return n, nil
}

// gapBound returns a time between recs[i-1] and recs[j] for the first j >= i
// whose gap to its predecessor is at least 10 µs: the midpoint of that gap,
// cut to whole microseconds. recs is sorted by time.
func gapBound(t *testing.T, recs []queryRecord, i int) time.Time {
	t.Helper()
	for j := max(i, 1); j < len(recs); j++ {
		if gap := recs[j].time.Sub(recs[j-1].time); gap >= 10*time.Microsecond {
			return recs[j-1].time.Add(gap / 2).Truncate(time.Microsecond)
		}
	}
	t.Fatalf("no gap of 10 µs between records after record %d of %d", i, len(recs))
	return time.Time{}
}

// duckdbRecipe returns the three statements of the first sql block under
// "### DuckDB" in README.md's "## Query in place" section: the view, the
// count by container, date and stream, and the time window. It fails the
// test when the section is missing or changed shape, or does not show
// queryPrefix.
func duckdbRecipe(t *testing.T) (view, counts, window string) {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	_, section, ok := strings.Cut(readme, "\n## Query in place\n")
	if !ok {
		t.Fatal(`README.md has no "## Query in place" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	if !strings.Contains(section, "prefix='"+queryPrefix+"'") {
		t.Fatalf("README.md's Query in place section does not show the prefix %s", queryPrefix)
	}
	_, duck, ok := strings.Cut(section, "\n### DuckDB\n")
	if !ok {
		t.Fatal(`README.md's Query in place section has no "### DuckDB"`)
	}
	_, block, ok := strings.Cut(duck, "\n```sql\n")
	if !ok {
		t.Fatal("README.md's DuckDB recipe has no sql block")
	}
	block, _, ok = strings.Cut(block, "\n```")
	if !ok {
		t.Fatal("README.md's DuckDB sql block is not closed")
	}
	var stmts []string
	for _, s := range regexp.MustCompile(`;[ \t]*\n`).Split(block+"\n", -1) {
		if s = strings.TrimSpace(s); s != "" {
			stmts = append(stmts, s)
		}
	}
	if len(stmts) != 3 || !strings.HasPrefix(stmts[0], "CREATE VIEW logs AS") {
		t.Fatalf("README.md's DuckDB recipe changed shape (want CREATE VIEW logs, the counts, the window; update TestQueryInPlace):\n%s", block)
	}
	return stmts[0], stmts[1], stmts[2]
}

// substitute replaces old, which must occur exactly once in stmt, with new.
func substitute(t *testing.T, stmt, old, new string) string {
	t.Helper()
	if n := strings.Count(stmt, old); n != 1 {
		t.Fatalf("README.md's DuckDB recipe holds %s %d times, want once (update TestQueryInPlace):\n%s", old, n, stmt)
	}
	return strings.Replace(stmt, old, new, 1)
}

// duckdb runs the view and one query with duckjson and returns the query's
// rows, one JSON object each.
func duckdb(t *testing.T, duck, view, query string) [][]byte {
	t.Helper()
	out, _, err := run(context.Background(), nil, duck, "-c", view+";\n"+query)
	if err != nil {
		t.Fatalf("DuckDB: %v\n%s", err, query)
	}
	var rows [][]byte
	for line := range bytes.Lines(out) {
		rows = append(rows, bytes.TrimSuffix(line, []byte("\n")))
	}
	return rows
}

// duckjsonBinary returns $S3LOGS_DUCKJSON, or builds query/cmd/duckjson
// (cgo) into a temporary folder. A missing C compiler is a missing
// requirement (fails under CI=true, skips otherwise); a failed build fails.
func duckjsonBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("S3LOGS_DUCKJSON"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("S3LOGS_DUCKJSON: %v", err)
		}
		return p
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	cc, err := exec.Command(goTool, "env", "CC").Output()
	if err != nil {
		t.Fatalf("go env CC: %v", err)
	}
	if _, err := exec.LookPath(strings.TrimSpace(string(cc))); err != nil {
		unavailable(t, "C compiler %q for DuckDB's Go bindings: %v", strings.TrimSpace(string(cc)), err)
	}
	bin := filepath.Join(t.TempDir(), "duckjson")
	start := time.Now()
	cmd := exec.Command(goTool, "build", "-o", bin, "./cmd/duckjson")
	cmd.Dir = "../query"
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build query/cmd/duckjson: %v\n%s", err, out)
	}
	t.Logf("built query/cmd/duckjson in %v", time.Since(start).Round(100*time.Millisecond))
	return bin
}
