package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"
)

// The secret check every fault test ends with: no secret in the plugin's
// log, the spool or any object.

// randomMarker returns a recognizable random string.
func randomMarker(t testing.TB, prefix string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// checkNoSecrets fails t for every place where one of f.secrets occurs:
// the plugin's log since the test began (at LOG_LEVEL=debug), the files in
// the spool, and every object on the test's MinIO, body (raw and
// decompressed) and metadata.
func (f *faults) checkNoSecrets(t *testing.T) {
	t.Helper()
	files, hits := f.spoolSecrets(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	buckets, err := f.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	nobj := 0
	for _, b := range buckets.Buckets {
		objs, err := f.list(ctx, aws.ToString(b.Name), "")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			body, meta, err := f.getObject(ctx, aws.ToString(b.Name), o.Key)
			if err != nil {
				t.Fatal(err)
			}
			where := "s3://" + aws.ToString(b.Name) + "/" + o.Key
			hits = append(hits, findSecrets(where, body, f.secrets)...)
			var metaText strings.Builder
			for k, v := range meta {
				fmt.Fprintf(&metaText, "%s=%s\n", k, v)
			}
			hits = append(hits, findSecrets(where+" metadata", []byte(metaText.String()), f.secrets)...)
			nobj++
		}
	}
	logLines := f.pluginLines(t, f.logStart)
	for i, l := range logLines {
		hits = append(hits, findSecrets(fmt.Sprintf("plugin log line %d", i), []byte(l), f.secrets)...)
	}
	t.Logf("MEASURE secrets: secrets=%d spool_files=%d objects=%d buckets=%d plugin_log_lines=%d found=%d",
		len(f.secrets), files, nobj, len(buckets.Buckets), len(logLines), len(hits))
	for _, h := range hits {
		t.Errorf("secret leaked: %s", h)
	}
}

// spoolSecrets reads every file in the spool and returns how many there
// are and where one of f.secrets occurs.
func (f *faults) spoolSecrets(t testing.TB) (files int, hits []string) {
	t.Helper()
	err := walkSpool(f.spool, func(rel string, d fs.DirEntry) error {
		if d.IsDir() {
			return nil
		}
		p := filepath.Join(f.spool, rel)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			// Listed, then uploaded and removed before it was read:
			// nothing of it is left in the spool to leak.
			return nil
		}
		if err != nil {
			return err
		}
		files++
		hits = append(hits, findSecrets(p, b, f.secrets)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, hits
}

// findSecrets reports where any of secrets occurs in data (raw) or, if data
// is zstd, in its decompressed content as far as it decodes (a segment in
// progress ends mid-frame).
func findSecrets(where string, data []byte, secrets map[string]string) []string {
	hits := scanSecrets(where+" (raw)", bytes.NewReader(data), secrets)
	if len(data) >= 4 && bytes.Equal(data[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		r, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1))
		if err == nil {
			hits = append(hits, scanSecrets(where+" (decompressed)", r, secrets)...)
			r.Close()
		}
	}
	return hits
}

// scanSecrets reads r to its end or first error in chunks that overlap by
// the longest secret, so memory stays small whatever r holds, and reports
// which secrets occur.
func scanSecrets(where string, r io.Reader, secrets map[string]string) []string {
	longest := 0
	for _, v := range secrets {
		longest = max(longest, len(v))
	}
	buf := make([]byte, 0, 1<<20+longest)
	found := map[string]bool{}
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for name, v := range secrets {
			found[name] = found[name] || bytes.Contains(buf, []byte(v))
		}
		if err != nil {
			break
		}
		if len(buf) > longest {
			buf = buf[:copy(buf, buf[len(buf)-longest:])]
		}
	}
	var hits []string
	for name, ok := range found {
		if ok {
			hits = append(hits, fmt.Sprintf("%s holds %s", where, name))
		}
	}
	slices.Sort(hits)
	return hits
}
