// Package fifo decodes the length-prefixed protobuf frames that Docker writes to
// a logging plugin's FIFO.
//
// # Wire format
//
// Each frame is a 4-byte big-endian unsigned length followed by that many bytes
// of a protobuf-encoded logentry.LogEntry. Docker's own decoder refuses frames
// over 1e6 bytes; Decoder refuses frames over MaxFrameSize (1 MiB) before it
// reads or allocates anything for the payload.
//
// A frame of length 0 is a valid protobuf encoding of a LogEntry with every
// field at its default (proto3 omits default values): in normal decoding,
// Decode returns it as an empty entry (Source "", TimeNano 0, empty Line,
// Partial false, no metadata) and a nil error. Docker never writes such a
// frame; callers decide what an empty entry means. Likewise a frame whose
// source is neither "stdout" nor "stderr", or whatever its time, is returned
// as it is: normal decoding checks only the length and the protobuf encoding,
// which keeps it cheap.
//
// # Resynchronisation
//
// The frame length is the only framing, so a reader that starts in the
// middle of a frame (a plugin re-attached to a FIFO after a crash, whose
// previous process had read part of a frame) or that meets a damaged frame
// does not know where the next frame starts. The decoder then resynchronises:
// it searches forward, byte by byte, for a position p that looks like a frame
// boundary. It accepts p only when all of these hold:
//
//   - the 4-byte length n at p is between 1 and MaxFrameSize;
//   - the n-byte payload decodes as a LogEntry whose source is exactly
//     "stdout" or "stderr" and whose time_nano is not 0 and lies within
//     [Now-MaxPast, Now+MaxFuture] of the decoder's clock (Options; by
//     default time.Now, 30 days and 1 day);
//   - the 4 bytes after the frame are a length between 1 and MaxFrameSize
//     too, or no byte follows the frame yet: the data read so far ends
//     exactly at the frame's end, and either the last read returned less
//     than the buffer had room for (the writer has written no more yet) or
//     the stream ended there. When 1 to 3 bytes follow, or the last read
//     filled the buffer, Decode reads on before deciding; at the end of the
//     stream, 1 to 3 trailing bytes make p fail.
//
// Frames whose header and payload do not fit in the read buffer (up to the
// 1 MiB maximum) are checked the same way: the buffer grows as their bytes
// arrive. A candidate whose first bytes already show that it is not a valid
// LogEntry (a malformed tag, a wrong wire type, a field running past the
// stated length) is rejected without waiting for the rest of it, so a false
// length rarely delays the search on a live FIFO.
//
// Resync mode starts:
//
//   - after a length prefix over MaxFrameSize (cause ErrFrameTooLarge);
//   - after a payload that is not a valid LogEntry (cause ErrCorrupt): the
//     length that framed it is suspect too, so the search starts at the
//     byte after the frame's first byte, not after the frame;
//   - after a frame torn by the end of the stream (cause ErrTruncated), in
//     case the stream goes on;
//   - when the caller asks, with Decoder.Resync or Options.Resync (cause
//     ErrResyncRequested): then the current position is checked with the
//     same rules first, so on a clean stream nothing is skipped.
//
// When it accepts a position the decoder returns to normal decoding, which
// does not check sources or times.
//
// # Errors
//
// Decode returns:
//
//   - nil: a frame was decoded into the entry.
//   - io.EOF (unwrapped): the stream ended, at a frame boundary or after the
//     bytes dropped before it were reported. Later calls read again, and
//     return io.EOF again at the end of a file or pipe.
//   - a *SkipError, matching ErrSkipped and its Cause with errors.Is: the
//     decoder dropped SkipError.Bytes (> 0) bytes, from the last position it
//     trusted up to the frame boundary it found, which the next Decode
//     returns, or up to the end of the stream, after which the next Decode
//     returns io.EOF. Cause is an error wrapping ErrFrameTooLarge,
//     ErrCorrupt, ErrTruncated (which also matches io.ErrUnexpectedEOF) or
//     ErrResyncRequested. A search that drops nothing reports nothing. The
//     sentinels ErrFrameTooLarge, ErrCorrupt and ErrTruncated are not
//     returned on their own any more, and no error is sticky: a caller
//     logs the SkipError and calls Decode again.
//   - any other error comes from the underlying reader and is wrapped.
//     Nothing is lost: the decoder keeps its position, including a search in
//     progress, so Decode may be called again (useful for deadlines and
//     timeouts).
//
// A caller that stops reading a Docker FIFO blocks the container once the pipe
// buffer is full, so after an error it should keep draining (or close) the
// FIFO rather than just return.
//
// # Offsets
//
// Decoder.Offset is the number of stream bytes before the next frame Decode
// can return: the frames returned plus the bytes skipped (Decoder.Skipped),
// not counting bytes that are only buffered. After a frame it is that frame's
// end; after a SkipError, the boundary found; after io.EOF, the stream's
// length; during a search interrupted by a reader error, the position the
// search has reached (the bytes before it cannot start a frame). A caller
// that consumes only what it has stored (peeking the FIFO with tee(2), then
// splicing bytes out) can consume up to Offset: that takes whole frames and
// dropped bytes, never part of a frame still to be returned. Offset and
// Skipped may be called from the underlying reader's Read while Decode runs:
// they then describe the frame or search in progress.
//
// # Buffers and allocation
//
// Decode reuses the destination entry: Line keeps its capacity, the sources
// "stdout" and "stderr" are interned constants, and an unchanged source or
// partial id reuses the previous string. The PartialLogMetadata pointer that
// Decode stores is owned by the Decoder and overwritten by the next Decode.
// In steady state a non-partial entry costs no allocation.
//
// The read buffer holds Options.BufSize bytes. To hold a larger frame it
// grows when full, doubling but never beyond the frame's stated length plus
// 8 bytes (at most MaxFrameSize+8), so memory follows the data that arrived,
// never a length prefix alone; it then keeps its size until Shrink, which a
// caller may call between Decode calls to give it back. Resynchronising
// costs no memory beyond that.
//
// A Decoder is not safe for concurrent use.
package fifo
