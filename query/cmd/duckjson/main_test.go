package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// duck runs the command with args and stdin and returns its exit status,
// stdout and stderr.
func duck(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestValuesAsJSON(t *testing.T) {
	code, out, errOut := duck(t, "", "-c", `SELECT
		42::BIGINT AS n, 'a"b' AS s, NULL AS z, DATE '2026-11-27' AS d,
		TIMESTAMPTZ '2026-11-27 15:44:05.123456Z' AS ts, TIMESTAMP_NS '2026-11-27 15:44:05.123456789' AS ns,
		12.50::DECIMAL(6,2) AS dec, MAP {'team': 'core'} AS m, [1, 2] AS l, true AS b`)
	want := `{"n":42,"s":"a\"b","z":null,"d":"2026-11-27","ts":"2026-11-27T15:44:05.123456Z",` +
		`"ns":"2026-11-27T15:44:05.123456789Z","dec":12.5,"m":{"team":"core"},"l":[1,2],"b":true}` + "\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, stderr %q\n got  %s want %s", code, errOut, out, want)
	}
}

func TestLastStatementFromStdin(t *testing.T) {
	script := "CREATE TABLE t (i INTEGER, s VARCHAR);\nINSERT INTO t VALUES (2, 'b'), (1, 'a');\nSELECT * FROM t ORDER BY i;\n"
	code, out, errOut := duck(t, script)
	if want := "{\"i\":1,\"s\":\"a\"}\n{\"i\":2,\"s\":\"b\"}\n"; code != 0 || out != want {
		t.Fatalf("exit %d, stderr %q\n got  %q\n want %q", code, errOut, out, want)
	}
	// A statement without rows prints nothing.
	if code, out, errOut := duck(t, "", "-c", "CREATE TABLE u (i INTEGER)"); code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestErrors(t *testing.T) {
	if code, _, errOut := duck(t, "", "-c", "SELECT nope FROM nowhere"); code != 1 || !strings.Contains(errOut, "nowhere") {
		t.Errorf("bad SQL: exit %d, stderr %q; want 1 and the error", code, errOut)
	}
	if code, _, errOut := duck(t, "", "-c", "SELECT 1", "extra"); code != 2 || !strings.Contains(errOut, "extra") {
		t.Errorf("extra argument: exit %d, stderr %q; want 2", code, errOut)
	}
	if code, _, _ := duck(t, "", "-nosuchflag"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
	// httpfs is not built in and may not be downloaded: a query that needs
	// it fails at once instead of reaching for the network.
	start := time.Now()
	if code, _, errOut := duck(t, "", "-c", "SELECT * FROM read_json('s3://bucket/key.jsonl')"); code != 1 || !strings.Contains(errOut, "httpfs") {
		t.Errorf("s3:// path: exit %d, stderr %q; want 1 naming httpfs", code, errOut)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("s3:// path took %v to fail", d)
	}
}

// TestHiveZstdJSON pins what README.md's DuckDB notes say about reading
// s3logs objects: zstd JSON lines in Hive-style folders, the partition types,
// the types DuckDB guesses without columns, and the precision of time.
func TestHiveZstdJSON(t *testing.T) {
	dir := t.TempDir()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	write := func(key string, frames ...string) {
		var b []byte
		for _, f := range frames { // one zstd frame each, like idle-separated bursts
			b = enc.EncodeAll([]byte(f), b)
		}
		p := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("container=web/date=2026-11-27/20261127T154405.123Z_3f2a9c1b7d4e_000042.jsonl.zst",
		`{"log":"a\n","stream":"stdout","time":"2026-11-27T15:44:05.123456789Z"}`+"\n",
		`{"log":"b","stream":"stderr","attrs":{"team":"core"},"time":"2026-11-27T15:44:06.5Z"}`+"\n")
	write("container=123/date=2026-11-28/20261128T000000.000Z_5e6f7a8b9c0d_000043.jsonl.zst",
		`{"log":"c\n","stream":"stdout","time":"2026-11-28T00:00:00.0000015Z"}`+"\n")
	glob := "'" + filepath.ToSlash(dir) + "/*/*/*.jsonl.zst'"

	view := "CREATE VIEW logs AS SELECT * FROM read_json(" + glob + `,
		format = 'newline_delimited', compression = 'zstd',
		columns = {time: 'TIMESTAMPTZ', stream: 'VARCHAR', log: 'VARCHAR', attrs: 'MAP(VARCHAR, VARCHAR)'},
		hive_partitioning = true, hive_types = {'container': 'VARCHAR', 'date': 'DATE'});`
	for _, c := range []struct{ name, sql, want string }{
		{"counts", view + "SELECT container, date, stream, count(*) AS n FROM logs GROUP BY ALL ORDER BY ALL",
			`{"container":"123","date":"2026-11-28","stream":"stdout","n":1}` + "\n" +
				`{"container":"web","date":"2026-11-27","stream":"stderr","n":1}` + "\n" +
				`{"container":"web","date":"2026-11-27","stream":"stdout","n":1}` + "\n"},
		// TIMESTAMPTZ cuts to microseconds; attrs is NULL where absent.
		{"microseconds", view + "SELECT time, log, attrs FROM logs ORDER BY time",
			`{"time":"2026-11-27T15:44:05.123456Z","log":"a\n","attrs":null}` + "\n" +
				`{"time":"2026-11-27T15:44:06.5Z","log":"b","attrs":{"team":"core"}}` + "\n" +
				`{"time":"2026-11-28T00:00:00.000001Z","log":"c\n","attrs":null}` + "\n"},
		{"nanoseconds", "SELECT time FROM read_json(" + glob + ", columns = {time: 'TIMESTAMP_NS'}) ORDER BY time",
			`{"time":"2026-11-27T15:44:05.123456789Z"}` + "\n" + `{"time":"2026-11-27T15:44:06.5Z"}` + "\n" +
				`{"time":"2026-11-28T00:00:00.0000015Z"}` + "\n"},
		// Without columns, time stays a string; the compression is taken
		// from the extension and the partitions are detected.
		{"guessed", "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_json(" + glob + ")) WHERE column_name IN ('time', 'container', 'date') ORDER BY ALL",
			`{"column_name":"container","column_type":"VARCHAR"}` + "\n" + `{"column_name":"date","column_type":"DATE"}` + "\n" +
				`{"column_name":"time","column_type":"VARCHAR"}` + "\n"},
		// Partition filters prune files before they are read.
		{"pruning", view + "SELECT count(*) AS n FROM logs WHERE container = 'web' AND date = DATE '2026-11-27' AND stream = 'stdout'",
			`{"n":1}` + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := duck(t, "", "-c", c.sql)
			if code != 0 || out != c.want {
				t.Fatalf("exit %d, stderr %q\n got\n%s want\n%s", code, errOut, out, c.want)
			}
		})
	}

	code, out, errOut := duck(t, "", "-c", view+"EXPLAIN SELECT count(*) FROM logs WHERE container = 'web'")
	if code != 0 || !strings.Contains(out, "Scanning Files: 1/2") {
		t.Fatalf("EXPLAIN: exit %d, stderr %q: no \"Scanning Files: 1/2\" in\n%s", code, errOut, out)
	}
}
