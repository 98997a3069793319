package uploader

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// errClass says how a failed attempt is retried.
type errClass int

const (
	// classRetryable: transient; exponential backoff with full jitter.
	classRetryable errClass = iota
	// classPermanent: will not heal by itself (permissions, credentials,
	// missing bucket, bad request); retried every BackoffCap.
	classPermanent
	// classAborted: the Uploader is stopping; not a failure of the destination.
	classAborted
)

func (c errClass) String() string {
	switch c {
	case classRetryable:
		return "retryable"
	case classPermanent:
		return "permanent"
	case classAborted:
		return "aborted"
	}
	return "unknown"
}

// retryableCodes are S3/AWS error codes that are transient whatever their
// HTTP status (RequestTimeout and ExpiredToken come with 400,
// RequestTimeTooSkewed with 403).
var retryableCodes = map[string]bool{
	"SlowDown":                               true,
	"Throttling":                             true,
	"ThrottlingException":                    true,
	"ThrottledException":                     true,
	"RequestThrottled":                       true,
	"RequestThrottledException":              true,
	"TooManyRequestsException":               true,
	"ProvisionedThroughputExceededException": true,
	"RequestLimitExceeded":                   true,
	"BandwidthLimitExceeded":                 true,
	"RequestTimeout":                         true,
	"RequestTimeoutException":                true,
	"InternalError":                          true,
	"ServiceUnavailable":                     true,
	"PriorRequestNotComplete":                true,
	"OperationAborted":                       true,
	"IncompleteBody":                         true,
	"BadDigest":                              true, // body damaged in transit; the file is re-read
	"XAmzContentSHA256Mismatch":              true, // likewise
	"ExpiredToken":                           true, // the credential cache refreshes
	"ExpiredTokenException":                  true,
	"RequestExpired":                         true,
	"RequestTimeTooSkewed":                   true, // the SDK corrects its clock offset
	"XMinioServerNotInitialized":             true,
	"XMinioStorageFull":                      true,
}

// permanentCodes are error codes that are never transient, listed so that
// they win over a retryable HTTP status some stores send with them.
var permanentCodes = map[string]bool{
	"AccessDenied":                 true,
	"AllAccessDisabled":            true,
	"AccountProblem":               true,
	"InvalidAccessKeyId":           true,
	"SignatureDoesNotMatch":        true,
	"InvalidToken":                 true,
	"NoSuchBucket":                 true,
	"InvalidBucketName":            true,
	"PermanentRedirect":            true,
	"AuthorizationHeaderMalformed": true,
	"InvalidArgument":              true,
	"InvalidStorageClass":          true,
	"InvalidRequest":               true,
	"KMS.NotFoundException":        true,
	"KMS.DisabledException":        true,
	"EntityTooLarge":               true,
}

// classify decides how a failed attempt is retried. parent is the
// Uploader's run context: when it is done, the failure is the Uploader
// stopping, not the destination failing. Unknown errors are retryable:
// both classes retry forever, and the fast schedule is the safer guess for
// an error nobody anticipated.
func classify(parent context.Context, err error) errClass {
	if parent.Err() != nil {
		return classAborted
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if retryableCodes[code] || strings.HasPrefix(code, "Throttl") {
			return classRetryable
		}
		if permanentCodes[code] {
			return classPermanent
		}
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch st := respErr.HTTPStatusCode(); {
		case st == http.StatusTooManyRequests, st == http.StatusRequestTimeout, st >= 500:
			return classRetryable
		case st >= 400:
			return classPermanent
		}
	}
	// Everything else is transient: the attempt's own timeout (the parent
	// is alive, checked above), resets, refused connections, DNS failures,
	// short reads, and errors nobody anticipated.
	return classRetryable
}

// errorCode returns the S3 error code of err, or a short description of its
// kind when it has none (for log lines).
func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() != "" {
		return apiErr.ErrorCode()
	}
	// The SDK wraps a request that got no response (refused, reset) in a
	// ResponseError with status 0: that is a network error, below.
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() != 0 {
		return "HTTP " + http.StatusText(respErr.HTTPStatusCode())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "AttemptTimeout"
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return "NetworkError"
	}
	return "Error"
}

// backoff returns the delay before the next attempt after the n-th
// consecutive failure (n counts from 0): full jitter, uniform in
// [0, min(cap, base*2^n)], drawn with randN, which returns a value in
// [0, m) like rand.Int64N.
func backoff(base, cap time.Duration, n int, randN func(m int64) int64) time.Duration {
	limit := cap
	if n < 62 && base > 0 && base <= cap>>n {
		limit = base << n
	}
	if limit <= 0 {
		return 0
	}
	return time.Duration(randN(int64(limit) + 1))
}
