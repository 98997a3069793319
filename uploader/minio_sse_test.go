package uploader

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/internal/miniotest"
	"github.com/s3logs/s3logs/segment"
)

// TestMinIOEncryptionAndStorageClass uploads segments whose destinations
// ask for SSE-S3 (AES256), SSE-KMS with a key id, and a storage class, to a
// MinIO with a KMS key, and checks each object with HeadObject and by
// reading its records back.
func TestMinIOEncryptionAndStorageClass(t *testing.T) {
	const kmsKey = "s3logs-test-key"
	srv := miniotest.StartOptions(t, miniotest.Options{KMSKey: kmsKey})
	srv.CreateBucket(t, "logs")
	srv.SetEnv(t)
	root := t.TempDir()
	cases := []struct {
		name                      string
		sse, keyID, storageClass  string
		wantSSE                   types.ServerSideEncryption
		wantKeyID, wantStorageCls string
	}{
		{name: "aes256", sse: "AES256", wantSSE: types.ServerSideEncryptionAes256},
		{name: "kms", sse: "aws:kms", keyID: kmsKey, wantSSE: types.ServerSideEncryptionAwsKms, wantKeyID: kmsKey},
		{name: "rrs", storageClass: "REDUCED_REDUNDANCY", wantStorageCls: "REDUCED_REDUNDANCY"},
	}
	segs := map[string]segment.Sealed{}
	raws := map[string][]byte{}
	for i, c := range cases {
		d := minioDest(srv, "logs")
		d.SSE, d.SSEKMSKeyID, d.StorageClass = c.sse, c.keyID, c.storageClass
		s, raw := makeSegment(t, root, testSegment{container: "c" + c.name, seq: uint64(i + 1), records: 500, dest: d})
		segs[c.name], raws[c.name] = s, raw
	}
	u := startUploader(t, Config{Root: root}, nil)
	waitFor(t, 30*time.Second, "uploads", func() bool { return u.Pending() == 0 })
	client := srv.Client(t)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	ctx := context.Background()
	for _, c := range cases {
		s := segs[c.name]
		if exists(t, s.Path()) {
			t.Fatalf("%s: not uploaded", c.name)
		}
		head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("logs"), Key: aws.String(s.Meta.Key)})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		t.Logf("%s: HeadObject ServerSideEncryption=%q SSEKMSKeyId=%q StorageClass=%q", c.name, head.ServerSideEncryption, aws.ToString(head.SSEKMSKeyId), head.StorageClass)
		if head.ServerSideEncryption != c.wantSSE {
			t.Errorf("%s: ServerSideEncryption %q, want %q", c.name, head.ServerSideEncryption, c.wantSSE)
		}
		// MinIO reports the key as an ARN ending in its name.
		if got := aws.ToString(head.SSEKMSKeyId); c.wantKeyID != "" && !strings.HasSuffix(got, c.wantKeyID) {
			t.Errorf("%s: SSEKMSKeyId %q, want the key %q", c.name, got, c.wantKeyID)
		}
		if string(head.StorageClass) != c.wantStorageCls {
			t.Errorf("%s: StorageClass %q, want %q", c.name, head.StorageClass, c.wantStorageCls)
		}
		obj, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("logs"), Key: aws.String(s.Meta.Key)})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		data, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		plain, err := dec.DecodeAll(data, nil)
		if err != nil || !bytes.Equal(plain, raws[c.name]) {
			t.Errorf("%s: records read back differ (%v)", c.name, err)
		}
	}
}
