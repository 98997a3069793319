// Package fifo decodes the length-prefixed protobuf frames that Docker writes to
// a logging plugin's FIFO.
//
// # Wire format
//
// Each frame is a 4-byte big-endian unsigned length followed by that many bytes
// of a protobuf-encoded logentry.LogEntry. Docker's own decoder refuses frames
// over 1e6 bytes; Decoder refuses frames over MaxFrameSize (1 MiB) with
// ErrFrameTooLarge before it reads or allocates anything for the payload.
//
// A frame of length 0 is a valid protobuf encoding of a LogEntry with every
// field at its default (proto3 omits default values): Decode returns it as an
// empty entry (Source "", TimeNano 0, empty Line, Partial false, no metadata)
// and a nil error. Docker never writes such a frame; callers decide what an
// empty entry means.
//
// # Errors
//
//   - io.EOF (unwrapped): the stream ended cleanly on a frame boundary.
//   - ErrTruncated (also matches io.ErrUnexpectedEOF): the stream ended inside a
//     frame header or payload. The partial frame is dropped; the next Decode
//     returns io.EOF.
//   - ErrFrameTooLarge: the length prefix exceeds MaxFrameSize. The framing is
//     lost, so the error is sticky: every later Decode returns it again.
//   - ErrCorrupt: the payload is not a valid LogEntry. The frame is consumed,
//     framing is intact and the next Decode continues with the next frame.
//   - Any other error comes from the underlying reader and is wrapped. Nothing
//     is lost: the decoder keeps its position, so Decode may be called again
//     (useful for deadlines and timeouts).
//
// A caller that stops reading a Docker FIFO blocks the container once the pipe
// buffer is full, so after a fatal error it should keep draining (or close)
// the FIFO rather than just return.
//
// # Buffers and allocation
//
// Decode reuses the destination entry: Line keeps its capacity, the sources
// "stdout" and "stderr" are interned constants, and an unchanged source or
// partial id reuses the previous string. The PartialLogMetadata pointer that
// Decode stores is owned by the Decoder and overwritten by the next Decode.
// In steady state a non-partial entry costs no allocation.
//
// A Decoder is not safe for concurrent use.
package fifo
