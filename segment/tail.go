package segment

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// ReadTail returns the last records of the segment data file at path, oldest
// first, each with its '\n': at most maxRecords records and, beyond the
// last one, at most maxBytes bytes in all. A record cut short at the end of
// the data (a torn tail) is not returned. It reads the whole file, streaming,
// with memory bounded by maxBytes plus one record.
//
// The driver uses it after a crash to recognise the records that the FIFO
// still holds but the repaired segment already stored.
func ReadTail(path string, maxRecords, maxBytes int) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("segment: read tail: %w", err)
	}
	defer f.Close()
	dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, fmt.Errorf("segment: read tail: %w", err)
	}
	defer dec.Close()
	br := bufio.NewReaderSize(dec, 1<<20)
	var tail [][]byte
	size := 0
	var line []byte
	for {
		chunk, rerr := br.ReadSlice('\n')
		line = append(line, chunk...)
		if errors.Is(rerr, bufio.ErrBufferFull) {
			if len(line) > maxRecoverLine {
				return nil, fmt.Errorf("%w: %s: record longer than %d bytes", ErrCorrupt, path, maxRecoverLine)
			}
			continue
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				return tail, nil
			}
			return tail, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, rerr)
		}
		rec := line
		line = nil
		tail = append(tail, rec)
		size += len(rec)
		for len(tail) > 1 && (len(tail) > maxRecords || size > maxBytes) {
			size -= len(tail[0])
			tail[0] = nil
			tail = tail[1:]
		}
	}
}
