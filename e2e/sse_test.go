package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3logs/s3logs/internal/loggen"
	"github.com/s3logs/s3logs/internal/miniotest"
)

// sseKey is the name of the KMS key of TestSSE's MinIO.
const sseKey = "s3logs-e2e-key"

// TestSSE logs through the encryption and storage-class log-opts into a
// MinIO started with a KMS key, checks every object with HeadObject, and
// reads the records back with the Go client (waitContent) and with
// `aws s3 cp` and `zstd -dc` (verifyCLI): the server decrypts for readers
// with access to the bucket, as AWS S3 does.
func TestSSE(t *testing.T) {
	s := newSuite(t)
	// The plugin holds the suite MinIO's credentials; this server takes
	// the same ones, and the containers name it with the endpoint log-opt.
	kms := miniotest.StartOptions(t, miniotest.Options{KMSKey: sseKey, AccessKey: s.minio.AccessKey, SecretKey: s.minio.SecretKey})
	ks := *s
	ks.minio, ks.s3 = kms, kms.Client(t) // same credentials: awsEnv holds

	cases := []struct {
		tag          string
		opts         []string
		sse          types.ServerSideEncryption
		kmsKey       string
		storageClass types.StorageClass
	}{
		{tag: "sse-s3", opts: []string{"sse=AES256"}, sse: types.ServerSideEncryptionAes256},
		{tag: "sse-kms", opts: []string{"sse=aws:kms", "sse-kms-key-id=" + sseKey}, sse: types.ServerSideEncryptionAwsKms, kmsKey: sseKey},
		// MinIO knows STANDARD (not reported) and REDUCED_REDUNDANCY.
		{tag: "rrs", opts: []string{"storage-class=REDUCED_REDUNDANCY"}, storageClass: types.StorageClassReducedRedundancy},
		{tag: "kms-rrs", opts: []string{"sse=aws:kms", "sse-kms-key-id=" + sseKey, "storage-class=REDUCED_REDUNDANCY"},
			sse: types.ServerSideEncryptionAwsKms, kmsKey: sseKey, storageClass: types.StorageClassReducedRedundancy},
	}
	for _, tc := range cases {
		t.Run(tc.tag, func(t *testing.T) {
			t.Parallel()
			spec := loggen.Spec{Mode: loggen.ModeInterleave, Lines: 3000, Tag: tc.tag}
			wantOut, wantErr := loggen.Expected(spec, spec.Count())
			c := ks.start(t, tc.tag, spec, tc.opts...)
			c.wait(t)
			objs, _ := c.waitContent(t, time.Now(), time.Now().Add(slowDeadline), wantOut, wantErr)
			for _, o := range objs {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				head, err := ks.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.bucket), Key: aws.String(o.Key)})
				cancel()
				if err != nil {
					t.Fatalf("HeadObject %s/%s: %v", c.bucket, o.Key, err)
				}
				keyID := aws.ToString(head.SSEKMSKeyId)
				t.Logf("MEASURE sse %s: %s ServerSideEncryption=%q SSEKMSKeyId=%q StorageClass=%q", tc.tag, o.Key, head.ServerSideEncryption, keyID, head.StorageClass)
				if head.ServerSideEncryption != tc.sse {
					t.Errorf("%s: ServerSideEncryption %q, want %q", o.Key, head.ServerSideEncryption, tc.sse)
				}
				// MinIO reports the key as arn:aws:kms:NAME.
				if (tc.kmsKey == "") != (keyID == "") || !strings.HasSuffix(keyID, tc.kmsKey) {
					t.Errorf("%s: SSEKMSKeyId %q, want the key %q", o.Key, keyID, tc.kmsKey)
				}
				if head.StorageClass != tc.storageClass {
					t.Errorf("%s: StorageClass %q, want %q", o.Key, head.StorageClass, tc.storageClass)
				}
			}
			c.verifyCLI(t, objs, wantOut, wantErr)
		})
	}
}
