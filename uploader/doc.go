// Package uploader uploads sealed segments from the spool to S3 and deletes
// each local copy once S3 has confirmed it.
//
// # Lifecycle
//
// New validates a Config. Start scans the spool root once with Config.Scan
// (default segment.ScanSealed) and starts Config.Workers worker goroutines; while it
// runs, the segment writer reports newly sealed segments with Enqueue. Close
// stops taking work, lets in-flight uploads finish until its context's
// deadline, cancels the rest and waits for every goroutine the Uploader
// started. Segments not uploaded stay on disk for the next Start. At
// shutdown, Drain comes first: it keeps the workers uploading the whole
// queue, and what is enqueued meanwhile, until it is empty or Drain's
// deadline passes, cutting each failing destination's backoff short once so
// a recovered S3 is tried at once. Cancelling
// the context given to Start aborts in-flight uploads the same way; Close
// must still be called to wait for the workers.
//
// # Scheduling
//
// Segments wait in one FIFO queue per container, served round-robin, so a
// container with a backlog cannot starve the others, plus an urgent FIFO
// queue (segments sealed because their container stopped) that is always
// served first. Enqueueing a segment that is already queued or being
// uploaded is a no-op (an urgent Enqueue moves a queued segment to the
// urgent queue), so the start-up scan and a notification may race freely.
//
// # Uploads
//
// Each segment is one PutObject under Meta.Key, the key fixed when the
// segment was sealed: Content-Type application/zstd, no Content-Encoding,
// Content-MD5 of the file (computed once per segment) so that the server
// refuses a body corrupted on the way, storage class and server-side
// encryption from the destination, and user metadata (x-amz-meta-*)
// describing the segment (see Metadata). The SDK's own retries and flexible
// checksums are off (checksum calculation "when required"): Content-MD5 is
// the one integrity check, understood by AWS and every S3-compatible store.
// Each attempt has a timeout of Config.AttemptTimeout plus one second per
// Config.MinThroughput bytes of the segment, so a hung connection cannot
// hold a worker forever. The local files are removed only after PutObject
// returned success.
//
// S3 clients come from package s3client, one per region, endpoint and
// addressing style, created on first use and reused, with the SDK's own
// retries off (the Uploader retries). Credentials come from the SDK's
// default chain; the region is Destination.Region, else the chain's
// region (AWS_REGION, the profile), else s3client.DefaultRegion.
//
// # Errors and retry
//
// Every failed attempt is classified (see the table in retry.go):
// retryable errors (network, timeouts, HTTP 5xx and 429, SlowDown,
// throttling, RequestTimeout, InternalError, expired tokens, bad digests)
// are retried with exponential backoff and full jitter, a delay drawn
// uniformly from [0, min(BackoffCap, BackoffBase*2^n)] after the n-th
// consecutive failure (n from 0); permanent errors (403 AccessDenied, bad
// credentials, NoSuchBucket, other 4xx) wait BackoffCap between attempts.
// Either way the segment is kept and retried forever. Backoff belongs to
// the destination: while a destination is failing, at most one attempt (a
// probe, taken from the head of the queues) is in flight for it and none
// starts before its backoff has passed, so other destinations keep going
// and a broken one is not hammered. The probe's failure is logged once per
// backoff step, at error level for permanent errors and warn level for
// retryable ones, naming bucket, key, S3 error code and cause; a success
// clears the destination's state and is logged at info level if the
// destination had been failing. Successful uploads are logged at debug
// level with key, bytes and duration. Credentials are never logged.
//
// # Observation
//
// Config.Observer, when set, is told the outcome of every attempt (result,
// S3 error code, bytes, duration, whether it is a retry) by the worker
// that made it; Stats reports the segments pending and the failing
// destinations with their consecutive failures and the time of the first.
// The plugin turns both into Prometheus metrics; this package does not
// depend on a metrics library.
package uploader
