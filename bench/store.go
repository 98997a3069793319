package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// store reads and removes what the plugin uploaded to the harness's bucket
// on its MinIO server (internal/miniotest).
type store struct {
	client *s3.Client
	bucket string
}

// objectStats sums what the plugin uploaded under a prefix.
type objectStats struct {
	Objects    int
	Records    int64
	RawBytes   int64 // uncompressed, from x-amz-meta-raw-bytes
	Compressed int64 // object sizes
	Keys       []string
	Sizes      []int64
}

// createBucket creates the bucket.
func (st store) createBucket() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := st.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(st.bucket)}); err != nil {
		return fmt.Errorf("CreateBucket %s: %w", st.bucket, err)
	}
	return nil
}

// stats lists the objects under prefix and reads each one's metadata.
func (st store) stats(ctx context.Context, prefix string) (objectStats, error) {
	var res objectStats
	p := s3.NewListObjectsV2Paginator(st.client, &s3.ListObjectsV2Input{Bucket: aws.String(st.bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return res, fmt.Errorf("ListObjectsV2 %s/%s: %w", st.bucket, prefix, err)
		}
		for _, o := range page.Contents {
			h, err := st.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.bucket), Key: o.Key})
			if err != nil {
				return res, fmt.Errorf("HeadObject %s/%s: %w", st.bucket, aws.ToString(o.Key), err)
			}
			recs, _ := strconv.ParseInt(h.Metadata["records"], 10, 64)
			raw, _ := strconv.ParseInt(h.Metadata["raw-bytes"], 10, 64)
			res.Objects++
			res.Records += recs
			res.RawBytes += raw
			res.Compressed += aws.ToInt64(o.Size)
			res.Keys = append(res.Keys, aws.ToString(o.Key))
			res.Sizes = append(res.Sizes, aws.ToInt64(o.Size))
		}
	}
	return res, nil
}

// waitRecords polls until the objects under prefix hold want records.
func (st store) waitRecords(prefix string, want int64, timeout time.Duration) (objectStats, error) {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := st.stats(ctx, prefix)
		cancel()
		if err == nil && res.Records >= want {
			return res, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return res, err
			}
			return res, fmt.Errorf("%s/%s: %d of %d records in S3 after %v", st.bucket, prefix, res.Records, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deleteKeys deletes objects so the server's disk stays small.
func (st store) deleteKeys(keys []string) error {
	for i := 0; i < len(keys); i += 1000 {
		var ids []types.ObjectIdentifier
		for _, k := range keys[i:min(i+1000, len(keys))] {
			ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, err := st.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(st.bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		cancel()
		if err != nil {
			return fmt.Errorf("DeleteObjects %s: %w", st.bucket, err)
		}
	}
	return nil
}
