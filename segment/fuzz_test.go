package segment

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// FuzzRecover feeds arbitrary bytes to recovery as an in-progress file: it
// must never panic, must account for the file (sealed, removed or
// quarantined), and whatever it seals must decode to complete records.
func FuzzRecover(f *testing.F) {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	f.Add(enc.EncodeAll([]byte("a\nb\n"), nil))
	f.Add(enc.EncodeAll([]byte("a\nb"), nil))
	f.Add(append(enc.EncodeAll([]byte("x\n"), nil), enc.EncodeAll([]byte("y\n"), nil)...))
	f.Add([]byte{})
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, testCID)
		os.MkdirAll(dir, 0o700)
		name := fileName(7)
		m := Meta{Version: MetaVersion, Key: "k/" + name, Destination: Destination{Bucket: "b"}, Container: Container{ID: testCID}, Seq: 7, FirstTime: time.Unix(1, 0)}
		if _, err := writeMeta(filepath.Join(dir, name+MetaSuffix), &m); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+PartialSuffix), data, 0o600); err != nil {
			t.Fatal(err)
		}
		sp, err := Open(Config{Root: root, NoTicker: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer sp.Close()
		reps, err := sp.Recover()
		if err != nil || len(reps) != 1 {
			t.Fatalf("Recover = %v, %v", reps, err)
		}
		if _, err := os.Stat(filepath.Join(dir, name+PartialSuffix)); err == nil {
			t.Fatal("in-progress file left in place")
		}
		if s := reps[0].Sealed; s != nil {
			b := decodeFile(t, s.Path())
			if len(b) == 0 || b[len(b)-1] != '\n' || int64(bytes.Count(b, []byte("\n"))) != s.Meta.Records {
				t.Fatalf("sealed %d records, data %q", s.Meta.Records, b)
			}
		}
	})
}
