package workload

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestAppendShort(t *testing.T) {
	for _, tc := range []struct {
		i    int
		want string
	}{{0, "1\n"}, {8, "9\n"}, {9, "10\n"}, {1999999, "2000000\n"}} {
		if got := string(AppendShort(nil, tc.i)); got != tc.want {
			t.Errorf("AppendShort(%d) = %q, want %q", tc.i, got, tc.want)
		}
	}
}

func TestAppendJSON(t *testing.T) {
	total := 0
	for i := 0; i < 5000; i++ {
		line := AppendJSON([]byte("prefix"), i)[len("prefix"):]
		if n := len(line); n < JSONMinSize || n > 1100 {
			t.Fatalf("line %d: %d bytes, want %d to 1100", i, n, JSONMinSize)
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
		if again := AppendJSON(nil, i); !bytes.Equal(again, line) {
			t.Fatalf("line %d differs between calls", i)
		}
	}
	if a, b := AppendJSON(nil, 1), AppendJSON(nil, 2); bytes.Equal(a, b) {
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

func TestAppendKind(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"short", true}, {"json", true}, {"", false}, {"JSON", false}, {"seq", false}} {
		k, ok := ParseKind(tc.name)
		if ok != tc.ok {
			t.Errorf("ParseKind(%q) ok = %v, want %v", tc.name, ok, tc.ok)
			continue
		}
		if ok && !bytes.Equal(Append(nil, k, 7), map[Kind][]byte{Short: AppendShort(nil, 7), JSON: AppendJSON(nil, 7)}[k]) {
			t.Errorf("Append(%s) differs from its Append function", k)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("Append with an unknown kind did not panic")
		}
	}()
	Append(nil, "bogus", 0)
}

func BenchmarkAppendJSON(b *testing.B) {
	var buf []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(AppendJSON(nil, 0))))
	i := 0
	for b.Loop() {
		buf = AppendJSON(buf[:0], i)
		i++
	}
}
