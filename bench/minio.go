package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// minio is a MinIO server started by the harness.
type minio struct {
	cmd       *exec.Cmd
	dir       string
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	client    *s3.Client
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startMinIO starts bin in a temporary folder on free ports and waits until
// it is ready.
func startMinIO(bin string) (*minio, error) {
	dir, err := os.MkdirTemp("", "s3logs-bench-minio-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cport, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &minio{
		dir:       dir,
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		AccessKey: "bench" + randHex(8),
		SecretKey: randHex(20),
		Region:    "us-east-1",
	}
	log, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	m.cmd = exec.Command(bin, "server", filepath.Join(dir, "data"),
		"--address", "127.0.0.1:"+strconv.Itoa(port), "--console-address", "127.0.0.1:"+strconv.Itoa(cport), "--quiet")
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	m.cmd.Stdout, m.cmd.Stderr = log, log
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- m.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(m.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "minio.log"))
			return nil, fmt.Errorf("minio exited: %v\n%s", err, b)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.stop()
			return nil, errors.New("minio not ready after 60 s")
		}
	}
	m.client = s3.New(s3.Options{
		Region:                     m.Region,
		BaseEndpoint:               aws.String(m.Endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return m, nil
}

// stop kills MinIO and removes its data.
func (m *minio) stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Kill()
	}
	time.Sleep(200 * time.Millisecond)
	os.RemoveAll(m.dir)
}

func (m *minio) createBucket(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := m.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	return err
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

// stats lists bucket/prefix and reads each object's metadata.
func (m *minio) stats(ctx context.Context, bucket, prefix string) (objectStats, error) {
	var st objectStats
	p := s3.NewListObjectsV2Paginator(m.client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return st, fmt.Errorf("ListObjectsV2 %s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			h, err := m.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				return st, fmt.Errorf("HeadObject %s/%s: %w", bucket, aws.ToString(o.Key), err)
			}
			recs, _ := strconv.ParseInt(h.Metadata["records"], 10, 64)
			raw, _ := strconv.ParseInt(h.Metadata["raw-bytes"], 10, 64)
			st.Objects++
			st.Records += recs
			st.RawBytes += raw
			st.Compressed += aws.ToInt64(o.Size)
			st.Keys = append(st.Keys, aws.ToString(o.Key))
			st.Sizes = append(st.Sizes, aws.ToInt64(o.Size))
		}
	}
	return st, nil
}

// waitRecords polls until the objects under prefix hold want records.
func (m *minio) waitRecords(bucket, prefix string, want int64, timeout time.Duration) (objectStats, error) {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := m.stats(ctx, bucket, prefix)
		cancel()
		if err == nil && st.Records >= want {
			return st, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return st, err
			}
			return st, fmt.Errorf("%s/%s: %d of %d records in S3 after %v", bucket, prefix, st.Records, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deleteKeys deletes objects so the server's disk stays small.
func (m *minio) deleteKeys(bucket string, keys []string) error {
	for i := 0; i < len(keys); i += 1000 {
		var ids []types.ObjectIdentifier
		for _, k := range keys[i:min(i+1000, len(keys))] {
			ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_, err := m.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}
