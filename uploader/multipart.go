package uploader

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3logs/s3logs/segment"
)

// DefaultMultipartThreshold: segments larger than this are uploaded in
// parts (see Config.MultipartThreshold).
const DefaultMultipartThreshold = 128 << 20

// minPartSize is S3's smallest part but the last.
const minPartSize = 5 << 20

// multipartAPI is the part of the S3 API a multipart upload uses. A
// client without it (test fakes) uploads every segment with PutObject.
type multipartAPI interface {
	CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error)
	UploadPart(ctx context.Context, in *s3.UploadPartInput, optFns ...func(*s3.Options)) (*s3.UploadPartOutput, error)
	CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error)
	AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, optFns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error)
	ListMultipartUploads(ctx context.Context, in *s3.ListMultipartUploadsInput, optFns ...func(*s3.Options)) (*s3.ListMultipartUploadsOutput, error)
	ListParts(ctx context.Context, in *s3.ListPartsInput, optFns ...func(*s3.Options)) (*s3.ListPartsOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

var _ multipartAPI = (*s3.Client)(nil)

// multipart is the progress of one segment's multipart upload, kept
// between attempts so that a failed part is retried alone.
type multipart struct {
	uploadID string
	partSize int64
	sums     []string // base64 MD5 of each part
	done     []types.CompletedPart
}

// partSums returns the part size and the MD5 of each part: from the
// sidecar (computed while the segment was written), else by reading the
// file once (segments sealed by older versions).
func partSums(s segment.Sealed, size int64) (int64, []string, error) {
	m := s.Meta
	if m.PartSize >= minPartSize && int64(len(m.PartMD5s)) == (size+m.PartSize-1)/m.PartSize {
		return m.PartSize, m.PartMD5s, nil
	}
	f, err := os.Open(s.Path())
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	var sums []string
	for off := int64(0); off < size; off += segment.PartSize {
		h := md5.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, off, min(segment.PartSize, size-off))); err != nil {
			return 0, nil, err
		}
		sums = append(sums, base64.StdEncoding.EncodeToString(h.Sum(nil)))
	}
	return segment.PartSize, sums, nil
}

// etagOf is the hex MD5 a part's ETag holds (for uploads without SSE-KMS).
func etagOf(sum string) string {
	b, _ := base64.StdEncoding.DecodeString(sum)
	return hex.EncodeToString(b)
}

// multipartETag is the ETag S3 gives the completed object:
// hex(MD5(concatenated part MD5s)) + "-" + number of parts.
func multipartETag(sums []string) string {
	h := md5.New()
	for _, s := range sums {
		b, _ := base64.StdEncoding.DecodeString(s)
		h.Write(b)
	}
	return fmt.Sprintf("%x-%d", h.Sum(nil), len(sums))
}

// uploadParts uploads it in parts under its fixed key, resuming the
// upload it (or an earlier process) started. A failed part leaves the
// parts before it done for the next attempt; a permanent error aborts the
// upload so no parts are left to be billed.
func (u *Uploader) uploadParts(ctx context.Context, c multipartAPI, it *item, f *os.File) error {
	m := it.seg.Meta
	bucket, key := aws.String(m.Destination.Bucket), aws.String(m.Key)
	if it.mp == nil {
		size, sums, err := partSums(it.seg, it.size)
		if err != nil {
			return &localError{err}
		}
		mp, err := u.resumeOrCreate(ctx, c, it, size, sums)
		if err != nil {
			return err
		}
		it.mp = mp
	}
	mp := it.mp
	fail := func(err error) error {
		if classify(u.runCtx, err) == classPermanent {
			u.abort(c, it)
		}
		return err
	}
	for p := len(mp.done) + 1; p <= len(mp.sums); p++ {
		off := int64(p-1) * mp.partSize
		n := min(mp.partSize, it.size-off)
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: bucket, Key: key, UploadId: aws.String(mp.uploadID), PartNumber: aws.Int32(int32(p)),
			Body: io.NewSectionReader(f, off, n), ContentLength: aws.Int64(n), ContentMD5: aws.String(mp.sums[p-1]),
		}, unsignedOverTLS)
		if err != nil {
			return fail(fmt.Errorf("UploadPart %d/%d of %s/%s: %w", p, len(mp.sums), m.Destination.Bucket, m.Key, err))
		}
		mp.done = append(mp.done, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(int32(p))})
	}
	_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: bucket, Key: key, UploadId: aws.String(mp.uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: mp.done},
	})
	if err == nil {
		it.mp = nil
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
		// Completed already (an earlier Complete whose reply was lost), or
		// aborted by a lifecycle rule: the object tells which.
		it.mp = nil
		head, herr := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: bucket, Key: key})
		if herr == nil && strings.Trim(aws.ToString(head.ETag), `"`) == multipartETag(mp.sums) {
			return nil
		}
	}
	return fail(fmt.Errorf("CompleteMultipartUpload %s/%s: %w", m.Destination.Bucket, m.Key, err))
}

// resumeOrCreate continues the newest unfinished upload of the key whose
// first parts match the segment's (part ETags are the parts' MD5s, except
// under SSE-KMS, where nothing matches and the parts are sent again), aborts
// the key's other unfinished uploads, or starts a new one.
func (u *Uploader) resumeOrCreate(ctx context.Context, c multipartAPI, it *item, partSize int64, sums []string) (*multipart, error) {
	m := it.seg.Meta
	bucket, key := aws.String(m.Destination.Bucket), aws.String(m.Key)
	mp := &multipart{partSize: partSize, sums: sums}
	list, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: bucket, Prefix: key})
	if err != nil {
		return nil, fmt.Errorf("ListMultipartUploads %s/%s: %w", m.Destination.Bucket, m.Key, err)
	}
	var ups []types.MultipartUpload
	for _, up := range list.Uploads {
		if aws.ToString(up.Key) == m.Key {
			ups = append(ups, up)
		}
	}
	slices.SortFunc(ups, func(a, b types.MultipartUpload) int { return aws.ToTime(b.Initiated).Compare(aws.ToTime(a.Initiated)) })
	for i, up := range ups {
		if i == 0 {
			if done := u.matchingParts(ctx, c, it, aws.ToString(up.UploadId), mp); done != nil {
				mp.uploadID, mp.done = aws.ToString(up.UploadId), done
				u.log.Info("uploader: resuming a multipart upload", "bucket", m.Destination.Bucket, "key", m.Key, "parts_done", len(done), "parts", len(sums))
				continue
			}
		}
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: key, UploadId: up.UploadId}); err != nil {
			u.log.Warn("uploader: cannot abort an unfinished multipart upload", "bucket", m.Destination.Bucket, "key", m.Key, "err", err)
		}
	}
	if mp.uploadID != "" {
		return mp, nil
	}
	in := putInput(it.seg, nil, 0, "")
	out, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: bucket, Key: key, ContentType: in.ContentType, Metadata: in.Metadata,
		StorageClass: in.StorageClass, ServerSideEncryption: in.ServerSideEncryption, SSEKMSKeyId: in.SSEKMSKeyId,
	})
	if err != nil {
		return nil, fmt.Errorf("CreateMultipartUpload %s/%s: %w", m.Destination.Bucket, m.Key, err)
	}
	mp.uploadID = aws.ToString(out.UploadId)
	return mp, nil
}

// matchingParts returns the leading parts of an unfinished upload that
// hold the segment's bytes (nil if none do).
func (u *Uploader) matchingParts(ctx context.Context, c multipartAPI, it *item, uploadID string, mp *multipart) []types.CompletedPart {
	m := it.seg.Meta
	out, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(m.Destination.Bucket), Key: aws.String(m.Key), UploadId: aws.String(uploadID)})
	if err != nil {
		return nil
	}
	parts := out.Parts
	slices.SortFunc(parts, func(a, b types.Part) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	var done []types.CompletedPart
	for i, p := range parts {
		n := i + 1
		if aws.ToInt32(p.PartNumber) != int32(n) || n > len(mp.sums) ||
			strings.Trim(aws.ToString(p.ETag), `"`) != etagOf(mp.sums[i]) ||
			aws.ToInt64(p.Size) != min(mp.partSize, it.size-int64(i)*mp.partSize) {
			break
		}
		done = append(done, types.CompletedPart{ETag: p.ETag, PartNumber: p.PartNumber})
	}
	return done
}

// abort ends the segment's multipart upload after a permanent error, so
// its parts are not left to be billed; the next attempt starts afresh.
func (u *Uploader) abort(c multipartAPI, it *item) {
	mp := it.mp
	it.mp = nil
	if mp == nil {
		return
	}
	m := it.seg.Meta
	ctx, cancel := context.WithTimeout(u.runCtx, u.cfg.AttemptTimeout)
	defer cancel()
	if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(m.Destination.Bucket), Key: aws.String(m.Key), UploadId: aws.String(mp.uploadID)}); err != nil {
		u.log.Warn("uploader: cannot abort a multipart upload after a permanent error; a lifecycle rule removes it", "bucket", m.Destination.Bucket, "key", m.Key, "err", err)
	}
}
