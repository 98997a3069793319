package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3logs/s3logs/uploader"
)

// Bounds of the label values taken from log-opts and from the S3 server.
const (
	// MaxBuckets is how many distinct buckets the upload metrics name;
	// attempts to further buckets are counted under bucket "other".
	MaxBuckets = 100
	// MaxCodes is how many distinct error codes s3logs_uploads_total names;
	// further codes are counted under code "other".
	MaxCodes = 50
)

// otherLabel replaces label values beyond a bound.
const otherLabel = "other"

// UploadDurationBuckets are the upper bounds, in seconds, of the
// s3logs_upload_duration_seconds histogram: 10 ms to about 5.5 min, each
// twice the last, which spans a small segment on a fast link to a 64 MiB
// one at the 1 MiB/s an attempt is given time for.
var UploadDurationBuckets = prometheus.ExponentialBuckets(0.01, 2, 16)

// Uploads is the uploader.Observer that counts and times upload attempts.
// Its methods are safe for concurrent use. Create it with NewUploads.
type Uploads struct {
	attempts *prometheus.CounterVec
	retries  *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// mu guards buckets and codes: the label values seen so far.
	mu      sync.Mutex
	buckets map[string]struct{}
	codes   map[string]struct{}
}

var _ uploader.Observer = (*Uploads)(nil)

// NewUploads creates the upload metrics and registers them on reg.
func NewUploads(reg prometheus.Registerer) (*Uploads, error) {
	u := &Uploads{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3logs_uploads_total",
			Help: "Upload attempts (one PutObject each), by bucket, result (success, retryable_error, permanent_error, local_error, aborted) and S3 error code (none on success).",
		}, []string{"bucket", "result", "code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3logs_upload_retries_total",
			Help: "Upload attempts of segments whose earlier attempt failed, by bucket.",
		}, []string{"bucket"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3logs_uploaded_bytes_total",
			Help: "Bytes of the segment files S3 confirmed, by bucket.",
		}, []string{"bucket"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "s3logs_upload_duration_seconds",
			Help:    "Duration of upload attempts (the PutObject, and on a segment's first attempt reading it for its MD5), by bucket and result.",
			Buckets: UploadDurationBuckets,
		}, []string{"bucket", "result"}),
		buckets: make(map[string]struct{}),
		codes:   make(map[string]struct{}),
	}
	for _, c := range []prometheus.Collector{u.attempts, u.retries, u.bytes, u.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// ObserveUpload counts one upload attempt. It implements uploader.Observer.
func (u *Uploads) ObserveUpload(a uploader.Attempt) {
	bucket, code := u.labels(a.Bucket, a.Code)
	result := string(a.Result)
	u.attempts.WithLabelValues(bucket, result, code).Inc()
	u.duration.WithLabelValues(bucket, result).Observe(a.Duration.Seconds())
	if a.Retry {
		u.retries.WithLabelValues(bucket).Inc()
	}
	if a.Result == uploader.ResultSuccess {
		u.bytes.WithLabelValues(bucket).Add(float64(a.Bytes))
	}
}

// labels bounds the bucket and code label values; an empty code is "none".
func (u *Uploads) labels(bucket, code string) (string, string) {
	if code == "" {
		code = "none"
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return bounded(u.buckets, bucket, MaxBuckets), bounded(u.codes, code, MaxCodes)
}

// bounded returns v if it is in seen or seen has room for it (adding it),
// and otherLabel otherwise.
func bounded(seen map[string]struct{}, v string, limit int) string {
	if _, ok := seen[v]; ok {
		return v
	}
	if len(seen) >= limit {
		return otherLabel
	}
	seen[v] = struct{}{}
	return v
}
