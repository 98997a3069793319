package uploader

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3logs/s3logs/s3client"
	"github.com/s3logs/s3logs/segment"
)

// objectPutter is the part of the S3 API the Uploader needs.
// Implementations must be safe for concurrent use.
type objectPutter interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

var _ objectPutter = (*s3.Client)(nil)

// destKey identifies a destination for backoff: the bucket and where its
// requests go. Storage class and encryption are per request and not part
// of it.
type destKey struct {
	Bucket string
	Target s3client.Target
}

func keyOf(d segment.Destination) destKey { return destKey{Bucket: d.Bucket, Target: targetOf(d)} }

// targetOf returns the S3 client target of a destination. Bucket, storage
// class and encryption are per request and not part of it.
func targetOf(d segment.Destination) s3client.Target {
	return s3client.Target{Region: d.Region, Endpoint: d.Endpoint, PathStyle: d.ForcePathStyle}
}

// unsignedOverTLS makes a PutObject over https send UNSIGNED-PAYLOAD
// instead of the body's SHA-256, so the SDK reads the file once, to send
// it: Content-MD5 (checked by the server) and TLS protect the body. Over
// plain http the payload stays signed, which reads the body twice.
func unsignedOverTLS(o *s3.Options) {
	if o.BaseEndpoint == nil || strings.HasPrefix(strings.ToLower(*o.BaseEndpoint), "https://") {
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	}
}

// isBadDigest reports whether S3 refused a body as not matching its
// Content-MD5.
func isBadDigest(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "BadDigest"
}

// fileMD5 returns the base64 MD5 of a file and its size.
func fileMD5(path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := md5.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("uploader: read %s: %w", path, err)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), size, nil
}

// putInput builds the PutObject request of a segment. body is the opened
// data file (seekable; the SDK reads it for the signature and rewinds it).
func putInput(s segment.Sealed, body io.ReadSeeker, size int64, md5sum string) *s3.PutObjectInput {
	d := s.Meta.Destination
	in := &s3.PutObjectInput{
		Bucket:        aws.String(d.Bucket),
		Key:           aws.String(s.Meta.Key),
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentType:   aws.String("application/zstd"),
		ContentMD5:    aws.String(md5sum),
		Metadata:      Metadata(s.Meta),
	}
	if d.StorageClass != "" {
		in.StorageClass = types.StorageClass(d.StorageClass)
	}
	if d.SSE != "" {
		in.ServerSideEncryption = types.ServerSideEncryption(d.SSE)
	}
	if d.SSEKMSKeyID != "" {
		in.SSEKMSKeyId = aws.String(d.SSEKMSKeyID)
	}
	return in
}

// Metadata limits. S3 allows 2 KB of user metadata (names and values).
const (
	maxMetaValue = 512 // bytes of one escaped free-text value
)

// Metadata returns the S3 user metadata (sent as x-amz-meta-NAME headers)
// stored with a segment's object:
//
//	container-id     full container id
//	container-name   container name (without a leading "/")
//	image-name       image name as the container was started with
//	image-id         image id
//	first-time       time of the first record, RFC 3339 with nanoseconds, UTC
//	last-time        time of the last record, likewise
//	records          number of records
//	raw-bytes        uncompressed bytes
//	seq              the segment's sequence number within its container
//	reason           why the segment was sealed (segment.Reason*)
//
// Values are ASCII: space, bytes outside printable ASCII, and "%" are
// percent-encoded (URL escaping; decode with url.PathUnescape), and the
// free-text values (name, image name, image id) are cut to 512 bytes at an
// escape boundary, which keeps the total well under S3's 2 KB limit.
// Empty values are left out.
func Metadata(m segment.Meta) map[string]string {
	md := map[string]string{
		"container-id":   metaValue(m.Container.ID),
		"container-name": metaValue(strings.TrimPrefix(m.Container.Name, "/")),
		"image-name":     metaValue(m.Container.ImageName),
		"image-id":       metaValue(m.Container.ImageID),
		"records":        strconv.FormatInt(m.Records, 10),
		"raw-bytes":      strconv.FormatInt(m.RawBytes, 10),
		"seq":            strconv.FormatUint(m.Seq, 10),
		"reason":         metaValue(m.Reason),
	}
	if !m.FirstTime.IsZero() {
		md["first-time"] = m.FirstTime.UTC().Format(time.RFC3339Nano)
	}
	if !m.LastTime.IsZero() {
		md["last-time"] = m.LastTime.UTC().Format(time.RFC3339Nano)
	}
	for k, v := range md {
		if v == "" {
			delete(md, k)
		}
	}
	return md
}

// metaValue percent-encodes space, every byte that is not printable ASCII,
// and "%", then cuts the result to maxMetaValue bytes without splitting an
// escape.
func metaValue(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		var enc string
		if c <= 0x20 || c > 0x7e || c == '%' {
			enc = string([]byte{'%', hexDigits[c>>4], hexDigits[c&15]})
		} else {
			enc = string(c)
		}
		if b.Len()+len(enc) > maxMetaValue {
			break
		}
		b.WriteString(enc)
	}
	return b.String()
}
