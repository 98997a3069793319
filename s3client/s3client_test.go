package s3client

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
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
		dest       Target
		wantRegion string
		wantEP     string
	}{
		{"", Target{}, "us-east-1", ""},
		{"eu-central-1", Target{}, "eu-central-1", ""},
		{"eu-central-1", Target{Region: "ap-south-1"}, "ap-south-1", ""},
		{"", Target{Endpoint: "minio.internal:9000", PathStyle: true}, "us-east-1", "https://minio.internal:9000"},
		{"", Target{Endpoint: "http://127.0.0.1:9000", PathStyle: true}, "us-east-1", "http://127.0.0.1:9000"},
	}
	f := NewFactory(Options{MaxAttempts: 1})
	defer f.CloseIdle()
	for _, tt := range tests {
		t.Setenv("AWS_REGION", tt.envRegion)
		c, err := f.newClient(context.Background(), tt.dest)
		if err != nil {
			t.Fatal(err)
		}
		o := c.Options()
		if o.Region != tt.wantRegion || aws.ToString(o.BaseEndpoint) != tt.wantEP || o.UsePathStyle != tt.dest.PathStyle {
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
