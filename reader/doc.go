// Package reader finds and reads the log segments s3logs uploaded, for the
// s3logs CLI (logs, ls) and for docker logs served by the plugin.
//
// # Finding segments
//
// The prefix template the containers logged with (the "prefix" log-opt)
// is walked with keys.Prefix.Parts into "/"-separated elements. Elements
// whose fields are known are named directly: literal text, the container
// name when selectors are given, DaemonName ("docker"), and the time
// fields for each year, month, day or hour (the template's finest time
// field) of the window, widened by Config.Lookback before its start
// because a segment that began earlier may still hold records of the
// window. An element with a field the reader cannot know ({{.Hostname}},
// {{.ImageName}}, {{.ID}} when the selector is a name) is listed with
// delimiter "/" and the folders found are matched against the element.
// Without a start time the time folders are listed too. A template with
// {{if}}, functions or pipelines cannot be walked (keys.ErrNotWalkable).
//
// Each object's file part gives its first record time, container id (12
// characters) and sequence number (keys.ParseFilePart). A container's
// segments are ordered by them; a segment whose successor starts before
// the window (less 2 s of stdout/stderr skew) is skipped, and so is one
// that starts after it. A selector is a container name, else a prefix of
// its id; a name selects every container that had it. When the template
// has no {{.Name}}, names come from the newest object's metadata
// (HeadObject).
//
// # Reading
//
// Stream fetches segments ahead of the one being printed, at most
// Config.Concurrency at once (at least two per container), each in its own
// goroutine that streams GetObject through a zstd decoder and parses the
// records into batches of about 256 KiB; at most two batches wait per
// segment, so memory is bounded whatever the object size. Records are
// merged across containers by time (a heap over the containers' heads);
// within a container they keep their stored order. Tail reads a
// container's segments newest first and stops as soon as it has enough
// records. Logs adds following: it lists again every Query.Poll and
// streams the segments that appeared since.
//
// Every goroutine the package starts ends before the call that started it
// returns.
package reader
