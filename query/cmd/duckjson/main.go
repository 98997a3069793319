// Command duckjson runs SQL in an embedded, in-memory DuckDB and prints the
// rows of the last statement as JSON lines.
//
// It stands in for `duckdb -jsonlines` where only DuckDB's Go bindings are
// available (the s3logs tests run the README's DuckDB recipe through it):
//
//	duckjson -c "CREATE VIEW logs AS ...; SELECT stream, count(*) FROM logs GROUP BY ALL"
//	duckjson < recipe.sql
//
// The statements run in order on one connection; the result of the last one
// is printed, one JSON object per row with the columns in result order.
// DATE values print as "2006-01-02", TIMESTAMP values as RFC 3339 with up to
// nine fractional digits in UTC, DECIMAL values as JSON numbers, BLOB values
// as base64, NULL as null. DuckDB may not download extensions (autoinstall is off): a query that
// needs one that is not built in fails instead of reaching the network.
//
// Exit status: 0 on success, 1 when a statement fails, 2 on bad usage.
//
// This is the only package of the Go module github.com/s3logs/s3logs/query,
// kept apart from the plugin's module because DuckDB's Go bindings need cgo
// and a C compiler: building or testing the plugin never compiles DuckDB,
// and the plugin's go.mod does not list it. Build it with CGO_ENABLED=1;
// the first build downloads DuckDB's prebuilt static library.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/duckdb/duckdb-go/v2"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is main without the process: it parses args, reads the SQL from -c or
// stdin, runs it and writes the rows to stdout. It returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("duckjson", flag.ContinueOnError)
	fs.SetOutput(stderr)
	command := fs.String("c", "", "SQL to run (default: read from stdin)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "duckjson: unexpected arguments %q\n", fs.Args())
		return 2
	}
	script := *command
	if script == "" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "duckjson: read stdin: %v\n", err)
			return 1
		}
		script = string(b)
	}
	w := bufio.NewWriter(stdout)
	err := query(context.Background(), script, w)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		fmt.Fprintf(stderr, "duckjson: %v\n", err)
		return 1
	}
	return 0
}

// query runs script in a new in-memory database and writes the rows of its
// last statement to w as JSON lines.
func query(ctx context.Context, script string, w io.Writer) error {
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return fmt.Errorf("open DuckDB: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open DuckDB: %w", err)
	}
	defer conn.Close()
	// Never reach for the network: this runs in CI, where it cannot.
	if _, err := conn.ExecContext(ctx, "SET autoinstall_known_extensions = false"); err != nil {
		return fmt.Errorf("configure DuckDB: %w", err)
	}
	rows, err := conn.QueryContext(ctx, script)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.ColumnTypes()
	if err != nil {
		return err
	}
	names := make([][]byte, len(cols))
	for i, c := range cols {
		if names[i], err = json.Marshal(c.Name()); err != nil {
			return err
		}
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var line []byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		line = append(line[:0], '{')
		for i, v := range vals {
			if i > 0 {
				line = append(line, ',')
			}
			line = append(append(line, names[i]...), ':')
			b, err := json.Marshal(jsonValue(v, cols[i].DatabaseTypeName()))
			if err != nil {
				return fmt.Errorf("column %s: %w", cols[i].Name(), err)
			}
			line = append(line, b...)
		}
		line = append(line, '}', '\n')
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	return rows.Err()
}

// jsonValue maps a value scanned from a column of DuckDB type dbType to one
// encoding/json prints as described in the package documentation.
func jsonValue(v any, dbType string) any {
	switch v := v.(type) {
	case time.Time:
		switch dbType {
		case "DATE":
			return v.Format(time.DateOnly)
		case "TIME":
			return v.Format("15:04:05.999999999")
		}
		return v.UTC().Format(time.RFC3339Nano)
	case duckdb.Decimal:
		return json.Number(v.String())
	case duckdb.UUID:
		return v.String()
	}
	return v
}
