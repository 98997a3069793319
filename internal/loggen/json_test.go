package loggen

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestJSONLines(t *testing.T) {
	total := 0
	for i := 0; i < 5000; i++ {
		line := appendJSON([]byte("prefix"), i)[len("prefix"):]
		if n := len(line); n < jsonMinSize || n > 1100 {
			t.Fatalf("line %d: %d bytes, want %d to 1100", i, n, jsonMinSize)
		}
		total += len(line)
		if line[len(line)-1] != '\n' || bytes.Count(line, []byte("\n")) != 1 {
			t.Fatalf("line %d does not end in its only newline: %q", i, line)
		}
		var v struct {
			TS   string `json:"ts"`
			Cart []struct {
				SKU string `json:"sku"`
			} `json:"cart"`
		}
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, line)
		}
		want := time.UnixMilli(jsonStart + int64(i)*3).UTC().Format("2006-01-02T15:04:05.000Z")
		if v.TS != want || len(v.Cart) == 0 {
			t.Fatalf("line %d: ts %q (want %q), %d cart items", i, v.TS, want, len(v.Cart))
		}
		if again := appendJSON(nil, i); !bytes.Equal(again, line) {
			t.Fatalf("line %d differs between calls", i)
		}
	}
	if a, b := appendJSON(nil, 1), appendJSON(nil, 2); bytes.Equal(a, b) {
		t.Fatal("lines 1 and 2 are equal")
	}
	t.Logf("mean JSON line: %d bytes", total/5000)
}

func TestCivil(t *testing.T) {
	for days := int64(-800000); days < 800000; days += 997 {
		tm := time.Unix(days*86400, 0).UTC()
		y, m, d := civil(days)
		if y != tm.Year() || m != int(tm.Month()) || d != tm.Day() {
			t.Fatalf("civil(%d) = %d-%d-%d, want %s", days, y, m, d, tm.Format(time.DateOnly))
		}
	}
}

func BenchmarkJSONLine(b *testing.B) {
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(appendJSON(nil, 0))))
	i := 0
	for b.Loop() {
		buf = appendJSON(buf[:0], i)
		i++
	}
}
