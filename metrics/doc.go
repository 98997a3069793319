// Package metrics exposes the plugin's Prometheus metrics, its health check
// and, on request, its profiles.
//
// # Where the numbers come from
//
// The packages that do the work keep their own counters and know nothing of
// Prometheus: driver.Driver, segment.Spool and uploader.Uploader each have a
// Stats method returning plain numbers, and the uploader tells an
// uploader.Observer about every upload attempt. This package is their
// consumer and defines what it needs of them (the Driver, Spool and
// Uploader interfaces):
//
//   - Register adds a collector that calls the three Stats methods at
//     scrape time, once per scrape, and turns the snapshots into constant
//     metrics. Nothing is updated per record: a stream counts its records
//     in plain fields of its own and adds them to the Driver's atomics once
//     per read of its FIFO; the spool counts bytes once per write(2) and
//     seals once per seal.
//   - Uploads is the uploader.Observer: upload attempts are rare (one per
//     segment of up to 64 MiB, plus retries), so it updates Prometheus
//     vectors directly.
//
// Nothing here is global: the plugin creates one prometheus.Registry and
// hands it to NewUploads, Register and Handler.
//
// # Labels
//
// Upload metrics carry the destination bucket; s3logs_uploads_total also
// the result and the S3 error code. Nothing is labelled by container: names
// and ids are unbounded. Bucket names come from log-opts and error codes from
// the server, so both are bounded too: beyond MaxBuckets buckets and
// MaxCodes codes, new values are counted under "other".
//
// # Metrics
//
//	s3logs_streams_open                      gauge    streams being read
//	s3logs_streams_reattached_total          counter  streams resumed after a plugin restart
//	s3logs_records_in_total{stream}          counter  records read from FIFOs, by stream (stdout, stderr)
//	s3logs_bytes_in_total{stream}            counter  bytes of those lines as the containers wrote them
//	s3logs_records_dropped_total{cause}      counter  records lost: spool_full, write_error, no_destination, corrupt_frame
//	s3logs_fifo_skipped_bytes_total          counter  FIFO bytes skipped to resynchronise (or discarded after a read error)
//	s3logs_segment_bytes_written_total       counter  compressed bytes written to segment files
//	s3logs_segments_sealed_total{reason}     counter  segments sealed: size, age, stop, shutdown, recovered
//	s3logs_segments_dropped_total            counter  sealed segments deleted unuploaded because the spool was full
//	s3logs_spool_bytes                       gauge    sealed segments waiting for upload, bytes (what SPOOL_LIMIT caps)
//	s3logs_spool_segments                    gauge    sealed segments waiting for upload
//	s3logs_spool_limit_bytes                 gauge    SPOOL_LIMIT in bytes (0: none)
//	s3logs_spool_free_bytes                  gauge    free space of the spool's filesystem
//	s3logs_journal_bytes                     gauge    stream journals: bursts not yet in segments, bytes
//	s3logs_shipping_lag_seconds              gauge    age of the oldest sealed segment not yet uploaded (0: none)
//	s3logs_upload_queue_segments             gauge    segments queued or being uploaded
//	s3logs_upload_failing_seconds{bucket}    gauge    how long uploads to a bucket have failed, for failing buckets only
//	s3logs_uploads_total{bucket,result,code} counter  upload attempts: result success, retryable_error, permanent_error, local_error, aborted
//	s3logs_upload_retries_total{bucket}      counter  attempts of segments whose earlier attempt failed
//	s3logs_upload_duration_seconds{bucket,result} histogram  duration of upload attempts
//	s3logs_uploaded_bytes_total{bucket}      counter  bytes uploaded (segment files S3 confirmed)
//
// plus the Go runtime (go_*) and process (process_*) collectors.
//
// # HTTP
//
// Handler serves /metrics, /healthz (200 "ok" only when every Check passes,
// 503 naming the failures otherwise) and, when asked, net/http/pprof under
// /debug/pprof/. The handlers only call what they are given.
package metrics
