// Package segment writes zstd-compressed log segments into a spool folder.
//
// # On-disk layout
//
// A Spool owns one folder, Config.Root (the plugin's SPOOL_DIR/segments):
//
//	root/
//	  .lock                         flock(2) of the Spool that has the folder open
//	  .seq                          spool-wide sequence counter (see Sequence numbers)
//	  <container id>/               one folder per container with a Writer or a segment
//	    000000001025.jsonl.zst.partial    segment being written
//	    000000001025.jsonl.zst.meta.json  its sidecar (Meta, JSON)
//	    000000001024.jsonl.zst            sealed segment: a complete zstd stream
//	    000000001024.jsonl.zst.meta.json  its sidecar, with the final counts
//	  _quarantine/<container id>/   files that cannot be used, kept for a while
//
// Names inside a container folder are the 12-digit sequence number and
// DataSuffix, so they sort in creation order. Temporary files end in ".tmp"
// (sidecars and the counter, written then renamed) or ".recover" (a
// segment being repaired). Container ids are 1 to 128 characters of
// [0-9a-zA-Z_-] not starting with '_' or '.', so they never collide with the
// spool's own entries. Everything is created 0600 (files) or 0700 (folders).
// Earlier versions kept a "seq" file in each container folder; it is read
// once at Open and deleted with its folder.
//
// # Life of a segment
//
// NewWriter registers a Writer and creates its container folder (syncing
// the root). Nothing else happens until the first Append, which allocates a
// sequence number, creates NNN.jsonl.zst.partial, writes the sidecar with the
// object key (WriterOptions.Key, called once) and syncs the folder.
//
// Appended records go to a zstd encoder borrowed from the Spool's pool.
// Flush (which the driver calls before each read of its FIFO) ends the
// current zstd block and writes it with write(2), so a crash loses at most
// what was appended since. A stream that stays idle for the flush interval
// ends its zstd frame and returns the encoder: a segment is a sequence of
// frames, one per burst of activity, each with its checksum, and an idle
// stream holds a file but no encoder.
//
// A segment is sealed when its file reaches WriterOptions.MaxSize, when its
// first record is WriterOptions.MaxAge old (the ticker checks), or when the
// Writer closes. The seal sequence: end the frame, fsync the file, rewrite
// the sidecar with the final counts (temporary file, fsync, rename), rename
// the data file to its final name, fsync the folder, then call OnSeal
// outside the Writer's lock. Sealed files never change; the uploader reads
// them and removes them with Sealed.Remove once S3 has them (data file
// first, then sidecar, then a folder sync).
//
// A write error (ENOSPC) abandons the segment: the file is closed as it is
// and handed to the janitor, which repairs and seals it once there is
// room and counts the records lost. At start-up, Recover (or ListPartials
// and RecoverPartial) repairs what a crash left in progress: every record
// that decodes whole up to its '\n' is kept and re-encoded into a sealed
// segment (reason "recovered"); a torn tail is cut; data that is corrupt
// before its end, or a partial file without a usable sidecar, goes to the
// quarantine (see Recover).
//
// # Sequence numbers and keys
//
// Sequence numbers come from one counter for the whole spool (.seq), never
// repeat, and only grow: a number is handed out only after the counter file
// says a higher one comes next, and the file is written once per 1024
// numbers, so a restart skips at most that many. Because they are unique
// per spool rather than per container folder, a container folder can be
// removed once it holds nothing: the next stream of that container still
// gets numbers it never had, so the key the driver renders from
// (first record time in ms, container id, seq) cannot repeat, even for two
// segments starting in the same millisecond. Deleting .seq while the spool
// holds no segment would restart the numbers; don't.
//
// # Capacity
//
// Config.Limit caps the sealed segments (data and sidecars): the backlog
// that waits for S3. Segments being written do not count (they are bounded
// by open streams × segment size, see Spool.CheckCapacity), nor does the
// quarantine, whose files are deleted Config.QuarantineMaxAge after they
// arrived. A filesystem with less than Config.MinFree free counts as full
// whatever the limit.
//
// The ledger tracks the sealed bytes as they change (seals and repairs add,
// Sealed.Remove and drops subtract), so the janitor need not walk the spool
// to know them. The janitor visits every flush interval, and when a seal
// takes the ledger to the limit or writes use up the free space its last
// statfs(2) saw. A visit costs one statfs and no walk unless the spool looks
// full: then one walk confirms it (the ledger may lag behind removals it was
// not told about, such as those of segments listed by the package-level
// ScanSealed) and, under PolicyDropOldest, a scan finds the oldest segments
// to drop; under PolicyBlock the gate stops Appends until there is room. A
// walk every minute corrects the ledger and finds folders left empty. Warnings
// are rate-limited: "still full" at most every 30 s or on a change, and
// beyond 5 drops in one visit, one summary line.
//
// The Driver's stream journals (bursts taken off Docker's pipes before they
// are compressed) live on the same filesystem: JournalRoom tells them how
// much more they may take, counting them against Config.Limit with the
// sealed segments and keeping JournalReserve beyond MinFree free for
// segments, and none while the gate is shut; JournalGrew keeps the count.
//
// The janitor also removes container folders that no Writer holds and that
// hold no segment: when the last Writer closes, or the last segment is
// removed, the folder becomes a candidate, and the next visit removes it
// with rmdir(2) (which fails on a folder that is not empty) under the
// registry lock, so a new Writer of that container cannot be registered
// in between.
//
// # Ownership
//
// Open takes an exclusive, non-blocking flock on root/.lock: one Spool per
// folder, across processes and within one (a second Open fails with
// ErrLocked). The lock is released once Close was called and every Writer
// is closed, or when the process exits.
//
// # Concurrency
//
// All exported methods are safe for concurrent use. The Spool is made of
// parts that each own their data and their lock. Locks nest in one order
// only: janitor.visitMu, held for a whole visit, may be held while taking
// Spool.mu (to remove a folder) or a leaf lock; Writer.mu, held while its
// segment's file is written, synced and renamed, may be held while taking a
// leaf lock; Spool.mu, held while a container folder is created or removed,
// takes no other. The leaf locks (encoderPool.mu, seqCounter.mu, ledger.mu,
// spaceGate.mu, janitor.mu) never take another lock.
//
//   - Spool.mu guards the registry: writers, dirs (container folders in use,
//     with their reference counts), closed, the lock file and the capacity
//     warning state.
//   - Writer.mu guards the Writer's open segment and closed flag. Append,
//     Flush, Close and the ticker's visits serialize on it.
//   - encoderPool.mu guards the idle encoders per level and the count of
//     encoders dropped since memory was last returned to the system.
//   - seqCounter.mu guards the next number and the reserved range.
//   - ledger.mu guards the sealed segments and their bytes, per folder
//     counts, the change count, the replay log of a walk under way and the
//     prune candidates.
//   - spaceGate.mu guards blocked and released; Appends wait on its cond,
//     after a lock-free check of an atomic flag that keeps open gates cheap.
//   - janitor.mu guards the abandoned files; janitor.visitMu serializes
//     visits and guards the state they keep (last walk, log rate limits).
//   - Atomics: the janitor's counters (dropped, droppedRecords,
//     lostOnError, written, walks, visits, pruned), the free space of its
//     last visit and the headroom that writes count down, and the ledger's
//     seal counts. Spool.Stats reads them with the ledger's usage, for
//     metrics.
//
// Callbacks (OnSeal, OnRecovered) run without any of these locks held.
package segment
