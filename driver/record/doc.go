// Package record turns decoded FIFO entries into whole log lines and encodes
// them as Docker json-file lines.
//
// # How the daemon splits lines (read from moby's source)
//
// Files read: daemon/logger/copier.go (Copier.copySrc), daemon/logger/adapter.go
// (pluginAdapter.Log), api/types/plugins/logdriver/entry.proto and io.go, and
// daemon/logger/jsonfilelog/jsonfilelog.go (marshalMessage), in both their
// current form and the pre-18.06 form (Message.Partial, no metadata).
//
// The Copier runs one goroutine per stream ("stdout", "stderr") with a 16 KiB
// buffer (defaultBufSize; plugins are not SizedLoggers), filled 2 KiB at a time:
//
//   - Each complete line becomes one message without its '\n', timestamped
//     time.Now().UTC(), with no partial metadata. pluginAdapter.Log sets
//     Partial = (metadata != nil), so it arrives as Partial=false.
//   - When the buffer is full and holds no '\n', its 16 KiB go out as a chunk
//     with metadata {ID: random 64-hex id, Ordinal: 1, 2, ..., Last: false}.
//     The first chunk's time.Now() is reused for every chunk of the line.
//   - When the '\n' finally arrives, the rest of the line goes out with
//     {same ID, next Ordinal, Last: true} and the first chunk's timestamp. That
//     last chunk may have an empty Line (the newline followed a full buffer).
//   - At EOF (container exit), bytes after the last '\n' go out as a chunk with
//     Last: false (continuing the chain if one is open, else a new ID with
//     Ordinal 1). No Last chunk follows. So a final line without a trailing
//     newline is a chain that never ends; Assembler.Flush emits it with
//     Newline false.
//   - Chunks of stdout and stderr come from separate goroutines and may
//     interleave on the FIFO; within one stream, chunks are in order.
//   - Docker's json-file driver does not reassemble: it writes each chunk as
//     its own JSON line and appends "\n" to the log field only when there is no
//     metadata or Last is true.
//   - Daemons before 18.06 sent Partial=true with no metadata for each full
//     buffer, and the rest of the line as an ordinary (non-partial) message.
//     Each message carried its own time.Now().
//
// # Reassembly rules (Assembler)
//
// An entry is partial when Partial is set or it carries metadata. The
// Assembler keeps one pending chain per source:
//
//   - A non-partial entry with nothing pending is one record, Newline true.
//   - Chunks with the same ID and consecutive ordinals form one record; the
//     chunk with Last true ends it with Newline true.
//   - A chunk with a different ID or a non-consecutive ordinal, or a
//     non-partial entry, arriving while a metadata chain is pending: the
//     pending bytes are emitted first (Newline false), then the entry is
//     handled on its own.
//   - A partial entry without metadata (old daemon) starts or continues a
//     chain; the next non-partial entry of the same source completes it
//     (Newline true).
//   - A record never exceeds MaxRecordSize: when a chain would grow beyond it,
//     the first MaxRecordSize bytes are emitted (Newline false) and the chain
//     continues in the next record.
//   - Flush emits every pending chain with Newline false.
//
// Concatenating Line (plus "\n" when Newline) of the records of one source
// gives back exactly the bytes the container wrote to that stream. Every
// record of a chain carries the first chunk's timestamp.
//
// # JSON encoding
//
// AppendJSON reproduces json-file's line byte for byte, as built by
// jsonlog.JSONLogs.MarshalJSONBuf (daemon/logger/jsonfilelog/jsonlog/
// jsonlogbytes.go) and fastTimeMarshalJSON (time_marshalling.go): the fields
// log, stream, attrs, time in that order; log omitted when empty, stream when
// "", attrs when empty; time in RFC 3339 with trailing zeros of the fraction
// dropped (time.RFC3339Nano); then '\n'. Strings are escaped as moby's
// ffjsonWriteJSONBytesAsString does: '"' and '\\' with a backslash, '\n' and
// '\r' as \n and \r, every other byte below 0x20 and '<', '>', '&' as \u00XX
// (so a tab is \u0009), each byte of invalid UTF-8 as \ufffd, U+2028 and U+2029
// as \u2028 and \u2029; everything else, DEL included, verbatim. The attrs
// object is json.Marshal of a map[string]string, as jsonfilelog.New builds it.
package record
