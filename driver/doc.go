// Package driver implements the Docker logging-driver protocol for s3logs.
//
// A Driver owns one stream per FIFO that Docker hands it with
// /LogDriver.StartLogging. Each stream has one reader goroutine (stream.run)
// that decodes the FIFO's frames, reassembles partial lines, encodes
// json-file records and appends them to a segment.Writer; it never waits on
// the network.
//
// # Journals
//
// A stream normally reads its FIFO through a journalSource: a pump
// goroutine moves the FIFO's bytes with splice(2) to the end of a
// per-stream file next to the saved stream (StateDir/<hash>.journal) as
// soon as Docker writes them, and the stream reads that file. A burst thus
// leaves Docker's pipe at the speed of a page-cache write instead of
// waiting for JSON encoding and zstd. The journal's header holds how many
// of its bytes are stored in segments (Commit); a restarted process resumes
// there, then goes on with the FIFO, so a byte is always in the pipe or in
// the journal until it is stored. A journal holds at most Config.JournalLimit
// bytes not yet stored, and grows only while the spool has room for it
// (JournalSpace, the segment.Spool): without room, once every journal byte
// is delivered, the stream reads the FIFO directly through the peekSource
// below, and returns to the journal when there is room again.
//
// # Consume only what is stored
//
// Without a journal, a stream reads its FIFO through a peekSource: tee(2) copies the pipe's
// bytes into a private pipe without consuming them. Before every read the
// stream flushes its segment writer (write(2): the records are in the file)
// and then commits, consuming from the FIFO with splice(2) exactly the frames
// whose records are stored. A crash therefore leaves every byte it had not
// stored in Docker's pipe, at a frame boundary, for the next process. The
// frames of a partial line (a line over 16 KiB, sent in pieces) are held,
// uncommitted, until its last piece is stored; after holdTimeout without a
// next piece, or beyond holdLimit bytes, the pieces so far are written out as
// records without a newline. A sealed segment's frames are committed at
// once. Where tee(2) fails, plainSource reads and consumes as it goes.
//
// # Re-attach
//
// At StartLogging the stream's FIFO path and what is needed to rebuild it
// (log-opts, container identity, selected attrs; never the container's
// environment) are saved in the spool's streams folder and removed at EOF.
// After a crash, Docker restarts the plugin but never repeats StartLogging;
// Reattach re-opens every saved FIFO that still exists, and stores what
// the journal of a FIFO that is gone still holds. Its decoder starts
// in resync mode (fifo.Options.Resync), and a deduper compares the first
// records with the last ones of the container's repaired segment, dropping
// those the dead process stored but had not consumed. Reattach never leaves
// a FIFO unread: it retries a FIFO that will not open, falls back to default
// options, and when nothing can be stored it reads and counts.
//
// # Stop and shutdown
//
// StopLogging replies at once: Docker still holds the FIFO open while it
// waits for the reply, so the reader goroutine reads on to EOF on its own,
// then seals the segment, which the uploader sends ahead of its backlog.
// Shutdown lets streams of stopped containers read on to EOF (bounded by its
// context) and interrupts the others at a frame boundary, leaving their
// unread frames in the pipe for the next start.
//
// # Counting
//
// Stats reports the streams and what they read, for metrics. A stream
// counts each record in plain fields that only its reader goroutine
// touches, and adds them to the Driver's atomic counters once per read of
// its FIFO, in the store-then-commit step before the read: the per-record
// path takes no lock and no atomic operation, and a stream waiting for
// input has published everything it read.
//
// # Goroutines
//
// Each stream's reader goroutine is started by StartLogging or Reattach and
// ends at EOF or when interrupted; its journal's pump goroutine starts with
// the journal and ends at the FIFO's EOF or when the stream closes the
// journal (Close waits for it); a re-attach retry runs in its own
// goroutine until it succeeds, the FIFO is gone or Shutdown. Shutdown waits
// for all of them.
package driver
