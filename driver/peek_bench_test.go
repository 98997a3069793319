package driver

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// BenchmarkFIFORead measures the read path alone on a real FIFO with a
// writer on the other side: plain reads that consume at once, against
// peekSource's tee(2), read of the private pipe and splice(2) commit of
// every delivered byte, in 64 KiB reads as a stream makes them. One
// operation is 64 MiB through the FIFO; MB/s is the read path's throughput.
func BenchmarkFIFORead(b *testing.B) {
	const total = 64 << 20
	chunk := bytes.Repeat([]byte("x"), 16<<10)
	for _, mode := range []string{"plain", "peek"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(total)
			for b.Loop() {
				path := filepath.Join(b.TempDir(), "fifo")
				if err := syscall.Mkfifo(path, 0o600); err != nil {
					b.Fatal(err)
				}
				w, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					b.Fatal(err)
				}
				f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
				if err != nil {
					b.Fatal(err)
				}
				growPipe(f)
				var src frameSource = &plainSource{r: f, f: f}
				var ps *peekSource
				devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				if mode == "peek" {
					if ps, err = newPeekSource(f, devNull); err != nil {
						b.Fatal(err)
					}
					src = ps
				}
				go func() {
					for n := 0; n < total; n += len(chunk) {
						w.Write(chunk)
					}
					w.Close()
				}()
				buf := make([]byte, readBufSize)
				got := 0
				for {
					n, err := src.Read(buf)
					got += n
					if err := src.Commit(src.Uncommitted()); err != nil {
						b.Fatal(err)
					}
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil && !errors.Is(err, errIdle) && !errors.Is(err, errHangup) {
						b.Fatal(err)
					}
				}
				if ps != nil {
					ps.Close()
				}
				devNull.Close()
				f.Close()
				if got != total {
					b.Fatalf("read %d bytes, want %d", got, total)
				}
			}
		})
	}
}
