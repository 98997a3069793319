package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// TestClassifyS3Responses sends PutObject through the real SDK to a server
// that answers with S3 error documents, and classifies the SDK's errors.
func TestClassifyS3Responses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		status, _ := strconv.Atoi(r.URL.Query().Get("x-status"))
		code := r.URL.Query().Get("x-code")
		if status == 0 { // the key carries the wanted response: /bucket/STATUS/CODE
			parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
			status, _ = strconv.Atoi(parts[1])
			code = parts[2]
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if code != "-" {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>test</Message><RequestId>r1</RequestId></Error>`, code)
		}
	}))
	defer srv.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:   &http.Client{Transport: tr},
		Retryer:      aws.NopRetryer{},
	})
	tests := []struct {
		status int
		code   string // "-": no error document
		want   errClass
	}{
		{403, "AccessDenied", classPermanent},
		{403, "InvalidAccessKeyId", classPermanent},
		{403, "SignatureDoesNotMatch", classPermanent},
		{404, "NoSuchBucket", classPermanent},
		{400, "InvalidArgument", classPermanent},
		{400, "InvalidStorageClass", classPermanent},
		{400, "SomethingNew", classPermanent},
		{301, "PermanentRedirect", classPermanent},
		{400, "RequestTimeout", classRetryable},
		{400, "ExpiredToken", classRetryable},
		{400, "BadDigest", classRetryable},
		{403, "RequestTimeTooSkewed", classRetryable},
		{503, "SlowDown", classRetryable},
		{503, "ServiceUnavailable", classRetryable},
		{500, "InternalError", classRetryable},
		{400, "ThrottlingException", classRetryable},
		{400, "Throttling", classRetryable},
		{429, "TooManyRequests", classRetryable},
		{502, "-", classRetryable},
		{504, "-", classRetryable},
		{429, "-", classRetryable},
		{403, "-", classPermanent},
		{404, "-", classPermanent},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_%s", tt.status, tt.code), func(t *testing.T) {
			_, err := client.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String("bucket"),
				Key:    aws.String(fmt.Sprintf("%d/%s", tt.status, tt.code)),
				Body:   strings.NewReader("data"),
			})
			if err == nil {
				t.Fatal("PutObject succeeded")
			}
			if got := classify(context.Background(), err); got != tt.want {
				t.Errorf("classify(%v) = %v, want %v", err, got, tt.want)
			}
			var respErr *awshttp.ResponseError
			if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != tt.status {
				t.Errorf("error %v does not carry status %d", err, tt.status)
			}
			if tt.code != "-" && errorCode(err) != tt.code {
				t.Errorf("errorCode = %q, want %q", errorCode(err), tt.code)
			}
		})
	}

	// A refused connection, through the real SDK.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	refused := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://" + addr), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:  &http.Client{Transport: tr}, Retryer: aws.NopRetryer{},
	})
	_, err = refused.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x"),
	})
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("want a refused connection, got %v", err)
	}
	if got := classify(context.Background(), err); got != classRetryable {
		t.Errorf("connection refused: got %v", got)
	}
	if got := errorCode(err); got != "NetworkError" {
		t.Errorf("connection refused: errorCode = %q, want NetworkError", got)
	}

	// The attempt's own timeout, through the real SDK against a hung server.
	hung := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hung }))
	defer hang.Close()
	defer close(hung)
	slow := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(hang.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:  &http.Client{Transport: tr}, Retryer: aws.NopRetryer{},
	})
	parent, cancelParent := context.WithCancel(context.Background())
	defer cancelParent()
	actx, cancel := context.WithTimeout(parent, 50*time.Millisecond)
	_, err = slow.PutObject(actx, &s3.PutObjectInput{Bucket: aws.String("b"), Key: aws.String("k"), Body: strings.NewReader("x")})
	cancel()
	if got := classify(parent, err); got != classRetryable {
		t.Errorf("attempt timeout %v: got %v", err, got)
	}
	if got := errorCode(err); got != "AttemptTimeout" {
		t.Errorf("attempt timeout: errorCode = %q, want AttemptTimeout", got)
	}
	cancelParent()
	if got := classify(parent, err); got != classAborted {
		t.Errorf("attempt cut by the Uploader stopping %v: got %v", err, got)
	}
}

// TestClassifyConstructed covers error shapes without an HTTP response.
func TestClassifyConstructed(t *testing.T) {
	op := func(err error) error {
		return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: err}
	}
	resp := func(status int, err error) error {
		return op(&awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{
				Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
				Err:      err,
			},
			RequestID: "r",
		})
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		parent context.Context
		err    error
		want   errClass
	}{
		{"reset", context.Background(), op(&smithyhttp.RequestSendError{Err: &net.OpError{Op: "write", Err: syscall.ECONNRESET}}), classRetryable},
		{"dns", context.Background(), op(&smithyhttp.RequestSendError{Err: &net.DNSError{Err: "no such host", Name: "s3.example", IsTemporary: true}}), classRetryable},
		{"short body", context.Background(), op(&url.Error{Op: "Put", URL: "http://x", Err: io.ErrUnexpectedEOF}), classRetryable},
		{"attempt deadline", context.Background(), op(&smithyhttp.RequestSendError{Err: context.DeadlineExceeded}), classRetryable},
		{"stopping", cancelled, op(&smithyhttp.RequestSendError{Err: context.Canceled}), classAborted},
		{"stopping during 503", cancelled, resp(503, &smithy.GenericAPIError{Code: "SlowDown"}), classAborted},
		{"403 AccessDenied", context.Background(), resp(403, &smithy.GenericAPIError{Code: "AccessDenied"}), classPermanent},
		{"500 AccessDenied", context.Background(), resp(500, &smithy.GenericAPIError{Code: "AccessDenied"}), classPermanent},
		{"400 ThrottledSomething", context.Background(), resp(400, &smithy.GenericAPIError{Code: "ThrottledSomething"}), classRetryable},
		{"503 opaque", context.Background(), resp(503, errors.New("opaque")), classRetryable},
		{"credentials", context.Background(), op(errors.New("failed to retrieve credentials")), classRetryable},
	}
	for _, tt := range tests {
		if got := classify(tt.parent, tt.err); got != tt.want {
			t.Errorf("%s: classify(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// TestBackoffBounds checks full jitter: the n-th delay lies in
// [0, min(cap, base*2^n)] and reaches both ends.
func TestBackoffBounds(t *testing.T) {
	base, cap := time.Second, 5*time.Minute
	maxRand := func(m int64) int64 { return m - 1 }
	zeroRand := func(int64) int64 { return 0 }
	for n := range 100 {
		limit := cap
		if n < 9 { // 2^9 s > 5 min
			limit = base << n
		}
		if got := backoff(base, cap, n, maxRand); got != limit {
			t.Errorf("n=%d: largest delay %s, want %s", n, got, limit)
		}
		if got := backoff(base, cap, n, zeroRand); got != 0 {
			t.Errorf("n=%d: smallest delay %s, want 0", n, got)
		}
		for range 200 {
			if got := backoff(base, cap, n, rand.Int64N); got < 0 || got > limit {
				t.Fatalf("n=%d: delay %s outside [0, %s]", n, got, limit)
			}
		}
	}
	// The draw is uniform: the mean of the 4th step is near 4 s.
	var sum time.Duration
	const draws = 20000
	for range draws {
		sum += backoff(base, cap, 3, rand.Int64N)
	}
	if mean := sum / draws; mean < 3800*time.Millisecond || mean > 4200*time.Millisecond {
		t.Errorf("mean of step 3 is %s, want about 4s", mean)
	}
}
