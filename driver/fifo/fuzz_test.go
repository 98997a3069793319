package fifo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/s3logs/s3logs/driver/logentry"
)

// FuzzDecoder decodes arbitrary streams with a small and the default buffer.
// Up to the first frame it cannot trust, the decoder must follow a reference
// that frames the stream independently and unmarshals each payload with the
// gogo-generated code: both accept the same payloads and produce the same
// entries, and the decoder reports the first untrusted frame as a SkipError
// whose cause is the reference's error. From there on, whatever the decoder
// does, every frame it returns must be the gogo decoding of the bytes
// between the Offsets before and after it, the first frame after a skip must
// pass the resync rules, and the skips must add up to the bytes not
// returned. It also checks that decoding terminates, and that the early
// check of a payload prefix never rejects a payload gogo accepts.
func FuzzDecoder(f *testing.F) {
	f.Add(sampleStream(f))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 3, 0x1a, 0x01, 'x'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0x10, 0, 1})
	f.Add([]byte{0, 0, 0, 5, 0x2a, 0x03, 0x08, 0x01, 0x10})
	f.Add([]byte{0, 0, 0, 6, 0x4b, 0x08, 0x01, 0x53, 0x54, 0x4c})
	// Frames that pass the resync rules, after untrusted ones.
	rec := shortLines(4, false)
	f.Add(append([]byte{0xff, 0xff, 0xff, 0xff, 'a'}, rec.data...))
	f.Add(append(rawFrame([]byte{0x08, 0x01}), rec.data...))
	f.Add(rec.data[7:])
	f.Fuzz(func(t *testing.T, data []byte) {
		want := referenceDecode(data)
		for _, r := range want {
			if r.err == nil {
				checkWalk(t, data[r.off+4:r.off+r.size])
			}
		}
		for _, bufSize := range []int{16, 0} {
			d := NewDecoderOptions(bytes.NewReader(data), Options{BufSize: bufSize, Now: testNow})
			var e logentry.LogEntry
			var skipped int64
			synced, afterSkip := true, false
			for i := 0; ; i++ {
				if i > len(data)+1 {
					t.Fatalf("buf %d: more Decode calls than input bytes", bufSize)
				}
				before := d.Offset()
				err := d.Decode(&e)
				off := d.Offset()
				if synced {
					r := want[i]
					switch {
					case r.err == nil && err == nil:
						if !equalEntry(&e, r.e) || off != int64(r.off+r.size) {
							t.Fatalf("buf %d: frame %d: got %+v at %d, want %+v at %d", bufSize, i, e, off, r.e, r.off+r.size)
						}
					case r.err == nil:
						t.Fatalf("buf %d: frame %d: err %v, reference accepted %+v", bufSize, i, err, r.e)
					case r.err == io.EOF:
						if err != io.EOF {
							t.Fatalf("buf %d: frame %d: err %v, want io.EOF", bufSize, i, err)
						}
					default:
						if !errors.Is(err, ErrSkipped) || !errors.Is(err, r.err) {
							t.Fatalf("buf %d: frame %d: err %v, want a SkipError caused by %v", bufSize, i, err, r.err)
						}
						synced = false
					}
				}
				var se *SkipError
				switch {
				case err == nil:
					p := data[before:off]
					var ref logentry.LogEntry
					if len(p) < 4 || int(binary.BigEndian.Uint32(p)) != len(p)-4 || ref.Unmarshal(p[4:]) != nil || !equalEntry(&e, &ref) {
						t.Fatalf("buf %d: call %d: returned %+v for bytes %x", bufSize, i, e, p)
					}
					if afterSkip {
						next := data[off:]
						if len(p) == 4 || (e.Source != "stdout" && e.Source != "stderr") || !d.plausibleTime(e.TimeNano) ||
							len(next) != 0 && (len(next) < 4 || !plausibleLength(binary.BigEndian.Uint32(next))) {
							t.Fatalf("buf %d: call %d: resync accepted %+v followed by %x", bufSize, i, e, next[:min(len(next), 4)])
						}
					}
					afterSkip = false
				case errors.As(err, &se):
					if se.Bytes <= 0 || off-before != se.Bytes || se.Cause == nil {
						t.Fatalf("buf %d: call %d: %v moved Offset from %d to %d", bufSize, i, err, before, off)
					}
					skipped += se.Bytes
					afterSkip = true
				case err == io.EOF:
					if off != int64(len(data)) || d.Skipped() != skipped {
						t.Fatalf("buf %d: at EOF: Offset %d, Skipped %d; want %d, %d", bufSize, off, d.Skipped(), len(data), skipped)
					}
				default:
					t.Fatalf("buf %d: call %d: unexpected error %v", bufSize, i, err)
				}
				if err == io.EOF {
					break
				}
			}
		}
	})
}

// checkWalk checks that walk, fed a valid payload p byte by byte as the
// decoder does, never reports it invalid, nor from scratch on any prefix.
func checkWalk(t *testing.T, p []byte) {
	t.Helper()
	at, depth := 0, 0
	for l := 0; l < len(p); l++ {
		var bad bool
		if at, depth, bad = walk(p[:l], len(p), at, depth); bad {
			t.Fatalf("walk rejects valid payload %x after %d bytes", p, l)
		}
		if len(p) <= 512 {
			if _, _, bad := walk(p[:l], len(p), 0, 0); bad {
				t.Fatalf("walk rejects the first %d bytes of valid payload %x", l, p)
			}
		}
	}
}

type refResult struct {
	e         *logentry.LogEntry
	err       error // nil, ErrCorrupt, ErrTruncated, ErrFrameTooLarge or io.EOF
	off, size int   // where the frame is, when err is nil
}

// referenceDecode frames data independently and unmarshals each payload with
// the generated code, up to the first frame that does not decode.
func referenceDecode(data []byte) []refResult {
	var out []refResult
	off := 0
	for {
		rest := data[off:]
		if len(rest) == 0 {
			return append(out, refResult{err: io.EOF})
		}
		if len(rest) < 4 {
			return append(out, refResult{err: ErrTruncated})
		}
		n := binary.BigEndian.Uint32(rest)
		if n > MaxFrameSize {
			return append(out, refResult{err: ErrFrameTooLarge})
		}
		if uint64(len(rest)-4) < uint64(n) {
			return append(out, refResult{err: ErrTruncated})
		}
		e := &logentry.LogEntry{}
		if err := e.Unmarshal(rest[4 : 4+n]); err != nil {
			return append(out, refResult{err: ErrCorrupt})
		}
		out = append(out, refResult{e: e, off: off, size: 4 + int(n)})
		off += 4 + int(n)
	}
}

// FuzzResync cuts a recorded stream (one of fuzzRecordings: short lines,
// 1 KiB lines, 16 KiB partial pieces of 100 KiB lines or ~1 MB lines, each
// in text and in binary content) at a fuzzed offset and decodes the rest in
// resync mode, with a fuzzed buffer size and read size. The decoder must skip
// exactly to the first frame boundary at or after the cut and then return
// every recorded frame from there, field by field, with their offsets: no
// false frame, no lost frame.
func FuzzResync(f *testing.F) {
	for kind := range 8 {
		f.Add(uint8(kind), uint32(0), uint16(0), uint16(0))
		f.Add(uint8(kind), uint32(1), uint16(16), uint16(1))
		f.Add(uint8(kind), uint32(5), uint16(4096), uint16(0))
		f.Add(uint8(kind), uint32(16400), uint16(100), uint16(512))
		f.Add(uint8(kind), uint32(1_000_003), uint16(0), uint16(65535))
	}
	f.Fuzz(func(t *testing.T, kind uint8, cut uint32, bufSize uint16, chunk uint16) {
		recs := fuzzRecordings()
		rec := recs[int(kind)%len(recs)]
		c := int(cut) % len(rec.data)
		if len(rec.data) > 1<<20 {
			chunk = max(chunk, 512) // keep megabyte inputs fast
		}
		src := &chunkReader{r: bytes.NewReader(rec.data[c:]), n: int(chunk)}
		d := NewDecoderOptions(nil, Options{BufSize: int(bufSize), Now: testNow})
		var e logentry.LogEntry
		if msg, _ := checkCut(d, src, rec, c, len(rec.entries), &e); msg != "" {
			t.Fatalf("kind %d, cut %d, buf %d, chunk %d: %s", kind, c, bufSize, chunk, msg)
		}
	})
}
