// Package driver implements the Docker logging-driver protocol for s3logs.
//
// A Driver owns one stream per FIFO that Docker hands it with
// /LogDriver.StartLogging. Each stream has one reader goroutine that decodes
// the FIFO's frames, reassembles partial lines, encodes json-file records and
// appends them to a segment.Writer; it never waits on the network. The
// reader flushes the segment writer before every read(2) of the FIFO, so a
// crash loses at most the records of one FIFO read batch.
//
// StopLogging replies at once: Docker still holds the FIFO open while it
// waits for the reply, so the reader goroutine reads on to EOF on its own,
// then seals the segment, which the uploader sends ahead of its backlog.
//
// At StartLogging the stream's FIFO path and what is needed to rebuild it
// (log-opts, container identity, selected attrs; never the container's
// environment) are saved in the spool's streams folder and removed at EOF.
// After a crash, Docker restarts the plugin but never repeats StartLogging;
// Reattach re-opens every saved FIFO that still exists.
package driver
