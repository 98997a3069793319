package fifo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/s3logs/s3logs/driver/logentry"
)

// FuzzDecoder decodes arbitrary streams with a small and the default buffer
// and checks each frame against the gogo-generated Unmarshal: both must
// accept the same payloads and produce the same entry. It also checks that
// decoding terminates.
func FuzzDecoder(f *testing.F) {
	f.Add(sampleStream(f))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 3, 0x1a, 0x01, 'x'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0x10, 0, 1})
	f.Add([]byte{0, 0, 0, 5, 0x2a, 0x03, 0x08, 0x01, 0x10})
	f.Add([]byte{0, 0, 0, 6, 0x4b, 0x08, 0x01, 0x53, 0x54, 0x4c})
	f.Fuzz(func(t *testing.T, data []byte) {
		want := referenceDecode(data)
		for _, bufSize := range []int{16, 0} {
			d := NewDecoder(bytes.NewReader(data), bufSize)
			var e logentry.LogEntry
			for i := 0; ; i++ {
				if i > len(data)+1 {
					t.Fatalf("buf %d: more Decode calls than input bytes", bufSize)
				}
				err := d.Decode(&e)
				if i >= len(want) {
					t.Fatalf("buf %d: frame %d: decoded %v beyond the reference's end", bufSize, i, err)
				}
				r := want[i]
				if r.err != nil {
					if !errors.Is(err, r.err) {
						t.Fatalf("buf %d: frame %d: err %v, want %v", bufSize, i, err, r.err)
					}
				} else if err != nil {
					t.Fatalf("buf %d: frame %d: err %v, reference accepted %+v", bufSize, i, err, r.e)
				} else if !equalEntry(&e, r.e) {
					t.Fatalf("buf %d: frame %d: got %+v, want %+v", bufSize, i, e, r.e)
				}
				if err != nil && !errors.Is(err, ErrCorrupt) {
					break
				}
			}
		}
	})
}

type refResult struct {
	e   *logentry.LogEntry
	err error // ErrCorrupt, ErrTruncated, ErrFrameTooLarge, io.EOF
}

// referenceDecode frames data independently and unmarshals each payload with
// the generated code.
func referenceDecode(data []byte) []refResult {
	var out []refResult
	for {
		if len(data) == 0 {
			return append(out, refResult{err: io.EOF})
		}
		if len(data) < 4 {
			return append(out, refResult{err: ErrTruncated})
		}
		n := binary.BigEndian.Uint32(data)
		if n > MaxFrameSize {
			return append(out, refResult{err: ErrFrameTooLarge})
		}
		if uint64(len(data)-4) < uint64(n) {
			return append(out, refResult{err: ErrTruncated})
		}
		e := &logentry.LogEntry{}
		if err := e.Unmarshal(data[4 : 4+n]); err != nil {
			out = append(out, refResult{err: ErrCorrupt})
		} else {
			out = append(out, refResult{e: e})
		}
		data = data[4+n:]
	}
}
