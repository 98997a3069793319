package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/s3logs/s3logs/driver"
	"github.com/s3logs/s3logs/segment"
	"github.com/s3logs/s3logs/uploader"
)

// Driver is what the metrics read of a driver.Driver. Stats must be safe
// for concurrent use; it is called once per scrape.
type Driver interface {
	Stats() driver.Stats
}

// Spool is what the metrics read of a segment.Spool. Stats must be safe
// for concurrent use; it is called once per scrape.
type Spool interface {
	Stats() segment.Stats
}

// Uploader is what the metrics read of an uploader.Uploader. Stats must be
// safe for concurrent use; it is called once per scrape.
type Uploader interface {
	Stats() uploader.Stats
}

var (
	_ Driver   = (*driver.Driver)(nil)
	_ Spool    = (*segment.Spool)(nil)
	_ Uploader = (*uploader.Uploader)(nil)
)

// Sources are the parts of the plugin a scrape reads.
type Sources struct {
	Driver   Driver   // required
	Spool    Spool    // required
	Uploader Uploader // required
	// Now is the clock the shipping lag is measured with. Default time.Now.
	Now func() time.Time
}

// Causes of s3logs_records_dropped_total.
const (
	// CauseSpoolFull: records in sealed segments deleted unuploaded
	// because the spool was full (SPOOL_POLICY=drop-oldest).
	CauseSpoolFull = "spool_full"
	// CauseWriteError: records lost to a write error (a full disk): those
	// a segment had accepted before the error abandoned it, and those
	// refused while no segment could be opened.
	CauseWriteError = "write_error"
	// CauseNoDestination: records read from a re-attached stream whose
	// saved options leave no usable destination; read so that the
	// container never blocks, and not stored.
	CauseNoDestination = "no_destination"
	// CauseCorruptFrame: frames the reader could not trust (not a
	// LogEntry, over the size limit, torn); each held at least one record.
	CauseCorruptFrame = "corrupt_frame"
)

// collector turns the Stats snapshots of the three sources into constant
// metrics at scrape time. It keeps no state of its own, so it is safe for
// concurrent scrapes.
type collector struct {
	src Sources

	streamsOpen, streamsReattached        *prometheus.Desc
	recordsIn, bytesIn                    *prometheus.Desc
	recordsDropped, skippedBytes          *prometheus.Desc
	written, sealed, segmentsDropped      *prometheus.Desc
	spoolBytes, spoolSegments, spoolLimit *prometheus.Desc
	spoolFree, journal, lag               *prometheus.Desc
	queue, failing                        *prometheus.Desc
}

func newCollector(src Sources) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{
		src:               src,
		streamsOpen:       d("s3logs_streams_open", "Container log streams (FIFOs) being read."),
		streamsReattached: d("s3logs_streams_reattached_total", "Streams resumed after the plugin restarted (Docker never repeats StartLogging)."),
		recordsIn:         d("s3logs_records_in_total", "Records read from the containers' FIFOs (lines, joined from Docker's 16 KiB pieces), by stream.", "stream"),
		bytesIn:           d("s3logs_bytes_in_total", "Bytes of the lines read from the containers' FIFOs as the containers wrote them (newline included), by stream.", "stream"),
		recordsDropped: d("s3logs_records_dropped_total",
			"Records lost, by cause: spool_full (dropped unuploaded, SPOOL_POLICY=drop-oldest), write_error (a full disk), no_destination (a re-attached stream without usable options), corrupt_frame (at least one per frame the reader could not trust).", "cause"),
		skippedBytes:    d("s3logs_fifo_skipped_bytes_total", "FIFO bytes skipped to find the next frame boundary, or discarded after a read of the FIFO failed."),
		written:         d("s3logs_segment_bytes_written_total", "Compressed bytes written to segment files."),
		sealed:          d("s3logs_segments_sealed_total", "Segments sealed, by reason: size, age, stop (container stopped), shutdown (plugin stopping), recovered (repaired after a crash or write error).", "reason"),
		segmentsDropped: d("s3logs_segments_dropped_total", "Sealed segments deleted without being uploaded because the spool was full (SPOOL_POLICY=drop-oldest)."),
		spoolBytes:      d("s3logs_spool_bytes", "Bytes of the sealed segments waiting for upload (data and metadata): what SPOOL_LIMIT caps."),
		spoolSegments:   d("s3logs_spool_segments", "Sealed segments waiting for upload."),
		spoolLimit:      d("s3logs_spool_limit_bytes", "The spool limit (SPOOL_LIMIT) in bytes; 0 means none."),
		spoolFree:       d("s3logs_spool_free_bytes", "Free space of the spool's filesystem (at most a second old); below 16 MiB the spool counts as full."),
		journal:         d("s3logs_journal_bytes", "Bytes of the stream journals in the spool: bursts taken off the containers' pipes that are not yet in segments (counted against SPOOL_LIMIT)."),
		lag:             d("s3logs_shipping_lag_seconds", "Age of the oldest sealed segment not yet uploaded (time since its seal), 0 when none waits. Its records are older by up to the segment-age log-opt."),
		queue:           d("s3logs_upload_queue_segments", "Segments queued for upload or being uploaded."),
		failing:         d("s3logs_upload_failing_seconds", "For each bucket whose last upload attempt failed: seconds since the first failure of the current spell (no upload has succeeded since).", "bucket"),
	}
}

// Describe sends every Desc of the collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.streamsOpen, c.streamsReattached, c.recordsIn, c.bytesIn, c.recordsDropped,
		c.skippedBytes, c.written, c.sealed, c.segmentsDropped, c.spoolBytes, c.spoolSegments, c.spoolLimit,
		c.spoolFree, c.journal, c.lag, c.queue, c.failing} {
		ch <- d
	}
}

// Collect reads each source's Stats once and sends the metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	now := c.src.Now()
	ds, ss, us := c.src.Driver.Stats(), c.src.Spool.Stats(), c.src.Uploader.Stats()
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	gauge(c.streamsOpen, float64(ds.StreamsOpen))
	counter(c.streamsReattached, float64(ds.StreamsReattached))
	for _, in := range []struct {
		stream string
		in     driver.In
		always bool
	}{{"stdout", ds.Stdout, true}, {"stderr", ds.Stderr, true}, {"other", ds.Other, false}} {
		if in.always || in.in.Records > 0 {
			counter(c.recordsIn, float64(in.in.Records), in.stream)
			counter(c.bytesIn, float64(in.in.Bytes), in.stream)
		}
	}
	counter(c.recordsDropped, float64(ss.DroppedRecords), CauseSpoolFull)
	counter(c.recordsDropped, float64(uint64(ss.LostOnError)+ds.NotStored), CauseWriteError)
	counter(c.recordsDropped, float64(ds.Unstorable), CauseNoDestination)
	counter(c.recordsDropped, float64(ds.CorruptFrames), CauseCorruptFrame)
	counter(c.skippedBytes, float64(ds.SkippedBytes))

	counter(c.written, float64(ss.WrittenBytes))
	for reason, n := range ss.Sealed {
		counter(c.sealed, float64(n), reason)
	}
	counter(c.segmentsDropped, float64(ss.DroppedSegments))
	gauge(c.spoolBytes, float64(ss.SealedBytes))
	gauge(c.spoolSegments, float64(ss.SealedSegments))
	gauge(c.spoolLimit, float64(ss.Limit))
	if ss.FreeBytes >= 0 {
		gauge(c.spoolFree, float64(ss.FreeBytes))
	}
	gauge(c.journal, float64(ss.JournalBytes))
	lag := 0.0
	if !ss.OldestSealed.IsZero() {
		lag = max(0, now.Sub(ss.OldestSealed).Seconds())
	}
	gauge(c.lag, lag)

	gauge(c.queue, float64(us.Pending))
	// One series per bucket: a bucket reached through two endpoints is
	// reported by its longest failure.
	since := map[string]time.Time{}
	for _, f := range us.Failing {
		if t, ok := since[f.Bucket]; !ok || f.Since.Before(t) {
			since[f.Bucket] = f.Since
		}
	}
	for bucket, t := range since {
		gauge(c.failing, max(0, now.Sub(t).Seconds()), bucket)
	}
}

// Register registers on reg the collector that reads src at scrape time,
// and Go runtime and process collectors. Call it once per registry.
func Register(reg prometheus.Registerer, src Sources) error {
	if src.Driver == nil || src.Spool == nil || src.Uploader == nil {
		return errors.New("metrics: Sources needs Driver, Spool and Uploader")
	}
	if src.Now == nil {
		src.Now = time.Now
	}
	for _, c := range []prometheus.Collector{
		newCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
