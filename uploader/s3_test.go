package uploader

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3logs/s3logs/segment"
)

// TestClientOptions checks region resolution, endpoint, addressing,
// retries and checksum settings of the real client factory.
func TestClientOptions(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tests := []struct {
		envRegion  string
		dest       segment.Destination
		wantRegion string
		wantEP     string
	}{
		{"", segment.Destination{Bucket: "b"}, "us-east-1", ""},
		{"eu-central-1", segment.Destination{Bucket: "b"}, "eu-central-1", ""},
		{"eu-central-1", segment.Destination{Bucket: "b", Region: "ap-south-1"}, "ap-south-1", ""},
		{"", segment.Destination{Bucket: "b", Endpoint: "minio.internal:9000", ForcePathStyle: true}, "us-east-1", "https://minio.internal:9000"},
		{"", segment.Destination{Bucket: "b", Endpoint: "http://127.0.0.1:9000", ForcePathStyle: true}, "us-east-1", "http://127.0.0.1:9000"},
	}
	f := &s3Factory{}
	defer f.closeIdle()
	for _, tt := range tests {
		t.Setenv("AWS_REGION", tt.envRegion)
		c, err := f.newClient(context.Background(), tt.dest)
		if err != nil {
			t.Fatal(err)
		}
		o := c.(*s3.Client).Options()
		if o.Region != tt.wantRegion || aws.ToString(o.BaseEndpoint) != tt.wantEP || o.UsePathStyle != tt.dest.ForcePathStyle {
			t.Errorf("%+v (AWS_REGION=%q): region %q endpoint %q path-style %v", tt.dest, tt.envRegion, o.Region, aws.ToString(o.BaseEndpoint), o.UsePathStyle)
		}
		if o.Retryer.MaxAttempts() != 1 {
			t.Errorf("SDK retries %d times", o.Retryer.MaxAttempts())
		}
		if o.RequestChecksumCalculation != aws.RequestChecksumCalculationWhenRequired {
			t.Errorf("checksum calculation %v", o.RequestChecksumCalculation)
		}
	}
}
