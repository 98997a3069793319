package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// lsRow is one container in `s3logs ls`.
type lsRow struct {
	Name    string    `json:"name"`
	ID      string    `json:"id"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
	Objects int       `json:"objects"`
	Bytes   int64     `json:"bytes"`
	Keys    []string  `json:"keys,omitempty"`
}

// runLs is `s3logs ls`.
func runLs(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	c := newCommand("ls", "Usage: s3logs ls [OPTIONS] [CONTAINER...]\n\nList the containers that have segments in S3 (all, or those named), with the time of their first and last record, their objects and bytes.",
		"only segments that may hold records since this time (same forms as logs --since)",
		"only segments that may hold records until this time", stderr, getenv)
	fs, d := c.fs, &c.dest
	output := fs.String("output", "table", "table, or json (one object per container, with its object keys)")
	fs.StringVar(output, "o", "table", "shorthand for --output")
	sel, w, code := c.parse(args, stderr, time.Now())
	if code != nil {
		return *code
	}
	if *output != "table" && *output != "json" {
		return exitCode(stderr, usageError(fmt.Sprintf("--output %q: want table or json", *output)))
	}
	r, err := d.reader(ctx, getenv)
	if err != nil {
		return exitCode(stderr, err)
	}
	cs, ferr := r.Find(ctx, sel, w)
	var rows []lsRow
	for _, c := range cs {
		row := lsRow{Name: c.Name, ID: c.ID, First: c.Segments[0].First, Objects: len(c.Segments)}
		for _, s := range c.Segments {
			row.Bytes += s.Size
			if *output == "json" {
				row.Keys = append(row.Keys, s.Key)
			}
		}
		newest := c.Segments[len(c.Segments)-1]
		info, err := r.Head(ctx, newest.Key)
		if err != nil {
			return exitCode(stderr, err)
		}
		row.Last = info.LastTime
		if row.Name == "" {
			row.Name = info.Name
		}
		if info.FullID != "" {
			row.ID = info.FullID[:min(12, len(info.FullID))]
		}
		rows = append(rows, row)
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		for _, row := range rows {
			enc.Encode(row)
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 3, ' ', 0)
		fmt.Fprintln(tw, "NAME\tCONTAINER ID\tFIRST\tLAST\tOBJECTS\tSIZE")
		for _, row := range rows {
			last := "-"
			if !row.Last.IsZero() {
				last = row.Last.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", row.Name, row.ID, row.First.UTC().Format(time.RFC3339), last, row.Objects, humanBytes(row.Bytes))
		}
		tw.Flush()
	}
	return exitCode(stderr, ferr)
}

// humanBytes formats a size as docker does (kB, MB, GB; powers of 1000).
func humanBytes(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}
