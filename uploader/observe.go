package uploader

import (
	"errors"
	"time"
)

// Observer is told the outcome of every upload attempt, for metrics.
// ObserveUpload is called by the worker that made the attempt, once it
// ended, without any lock of the Uploader held; it must be safe for
// concurrent use and return quickly, since that worker waits for it.
// Attempts cut short because the segment's file was gone (dropped or
// already uploaded) are not reported.
type Observer interface {
	ObserveUpload(Attempt)
}

// Result classifies an upload attempt.
type Result string

// The results of an upload attempt. Every failure is retried (see the
// package documentation): the result says on which schedule.
const (
	// ResultSuccess: S3 confirmed the object; the local copy is removed.
	ResultSuccess Result = "success"
	// ResultRetryable: a transient failure (network, timeout, 5xx,
	// throttling), retried with exponential backoff.
	ResultRetryable Result = "retryable_error"
	// ResultPermanent: a refusal that will not heal by itself (403,
	// NoSuchBucket, bad credentials), retried every Config.BackoffCap.
	ResultPermanent Result = "permanent_error"
	// ResultLocal: the segment file could not be read; retried with
	// backoff per segment.
	ResultLocal Result = "local_error"
	// ResultAborted: cut short by Close or by the end of Start's context;
	// the segment stays on disk for the next start.
	ResultAborted Result = "aborted"
)

// Attempt describes one upload attempt: one PutObject, or for a segment
// over Config.MultipartThreshold the parts still missing and the
// CompleteMultipartUpload (plus, for segments sealed before sidecars
// carried their MD5s, the read that computes them on the first attempt).
type Attempt struct {
	// Bucket is the destination bucket.
	Bucket string
	// Result classifies the attempt.
	Result Result
	// Code is "" on success, else the S3 error code (AccessDenied,
	// SlowDown...) or the kind of failure when S3 gave none: "HTTP <status
	// text>", "AttemptTimeout", "NetworkError", "LocalError" or "Error".
	// The S3 codes come from the server: a consumer that turns them into
	// label values should bound how many it keeps.
	Code string
	// Bytes is the segment's size, known once its file was read (0 if
	// the attempt failed before).
	Bytes int64
	// Duration is how long the attempt took.
	Duration time.Duration
	// Retry reports that an earlier attempt of the same segment failed.
	Retry bool
}

// outcome classifies the error of an attempt (nil for a success).
func (u *Uploader) outcome(err error) (Result, string) {
	if err == nil {
		return ResultSuccess, ""
	}
	var lerr *localError
	if errors.As(err, &lerr) {
		return ResultLocal, "LocalError"
	}
	switch classify(u.runCtx, err) {
	case classAborted:
		return ResultAborted, errorCode(err)
	case classPermanent:
		return ResultPermanent, errorCode(err)
	}
	return ResultRetryable, errorCode(err)
}

// Stats is a snapshot of the Uploader's queue and failing destinations.
type Stats struct {
	// Pending is the number of segments queued or being uploaded.
	Pending int
	// Failing lists the destinations whose last attempt failed.
	Failing []FailingDestination
}

// FailingDestination is a destination whose uploads fail.
type FailingDestination struct {
	// Bucket, Region and Endpoint name the destination (Region may be ""
	// when the SDK's chain chooses it; Endpoint is "" for AWS S3).
	Bucket, Region, Endpoint string
	// Failures counts its consecutive failed attempts.
	Failures int
	// Since is when the first of them ended: the destination has had no
	// successful upload since then.
	Since time.Time
}

// Stats returns the number of pending segments and the failing
// destinations. It is safe for concurrent use and takes the Uploader's
// lock briefly.
func (u *Uploader) Stats() Stats {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := Stats{Pending: len(u.items)}
	for k, ds := range u.dests {
		if ds.failures > 0 {
			st.Failing = append(st.Failing, FailingDestination{Bucket: k.Bucket, Region: k.Target.Region,
				Endpoint: k.Target.Endpoint, Failures: ds.failures, Since: ds.since})
		}
	}
	return st
}
