package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/internal/dockerplugin"
	"github.com/s3logs/s3logs/internal/loggen"
	"github.com/s3logs/s3logs/internal/miniotest"
)

const (
	defaultPlugin = "s3logs:latest"
	defaultImage  = "s3logs-loggen:test"
	// defaultSpool is the spool mount source config.json declares.
	defaultSpool = "/var/lib/s3logs"
	// labelKey marks every container the suite creates.
	labelKey = "s3logs-e2e"
	// exitDeadline is the promise: with S3 reachable, a stopped
	// container's last lines are in the bucket within 5 s of its exit.
	// `make bench` measures that figure against this budget (0.2 to 2.9 s
	// seen); the tests wait exitBound.
	exitDeadline = 5 * time.Second
	// exitBound is how long the tests wait for a stopped container's last
	// lines to be in S3, and for the spool to drain. It leaves a loaded
	// 2-core machine six times the promise, and still fails a segment left
	// waiting for its age (segment-age, 5 min by default), for the next
	// container or for a retry: those are a different kind of wrong, not a
	// few seconds late.
	exitBound = 30 * time.Second
	// slowDeadline bounds waits where only completeness matters.
	slowDeadline = 60 * time.Second
	// pollInterval is the S3 polling period.
	pollInterval = 100 * time.Millisecond
	// cmdTimeout bounds every docker / aws / zstd command.
	cmdTimeout = 2 * time.Minute
)

// suite is the shared state of one run: MinIO, the configured plugin, the
// generator image. Its fields are set by newSuite and read-only afterwards;
// methods are safe for concurrent use by parallel subtests.
type suite struct {
	plugin string
	image  string
	runID  string
	minio  *miniotest.Server
	s3     *s3.Client
	spool  string
	awsEnv []string
	zdec   *zstd.Decoder // DecodeAll is safe for concurrent use
}

// requireCI reports whether missing requirements must fail (CI) or skip.
func requireCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// unavailable fails under CI and skips otherwise.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if requireCI() {
		t.Fatalf("e2e requirement missing under CI: %s", msg)
	}
	t.Skipf("e2e requirement missing (set CI=true to fail instead): %s", msg)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// run executes a command with cmdTimeout and returns stdout and stderr.
func run(ctx context.Context, env []string, name string, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = env
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(e.Bytes()))
	}
	return o.Bytes(), e.Bytes(), err
}

// docker runs the docker CLI and fails the test on error.
func docker(t testing.TB, args ...string) []byte {
	t.Helper()
	out, _, err := run(context.Background(), nil, "docker", args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newSuite checks the requirements, starts MinIO, builds the generator image
// and points the plugin at MinIO for the duration of t.
func newSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{
		plugin: envOr("S3LOGS_PLUGIN", defaultPlugin),
		image:  envOr("S3LOGS_LOGGEN_IMAGE", defaultImage),
		runID:  strconv.FormatInt(time.Now().UnixNano()%1e10, 36),
	}
	for _, tool := range []string{"docker", "aws", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s not on PATH", tool)
		}
	}
	if out, _, err := run(context.Background(), nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		unavailable(t, "no Docker Engine: %v", err)
	} else {
		t.Logf("Docker Engine %s, plugin %s, run %s", bytes.TrimSpace(out), s.plugin, s.runID)
	}
	if _, _, err := run(context.Background(), nil, "docker", "plugin", "inspect", s.plugin); err != nil {
		unavailable(t, "plugin %s not installed (run `make plugin`): %v", s.plugin, err)
	}

	s.removeLeftovers(t)
	s.buildImage(t)

	s.minio = miniotest.Start(t)
	s.s3 = s.minio.Client(t)
	s.awsEnv = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+s.minio.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+s.minio.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_DEFAULT_REGION="+s.minio.Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=/nonexistent/s3logs-e2e",
		"AWS_SHARED_CREDENTIALS_FILE=/nonexistent/s3logs-e2e",
		"AWS_PAGER=",
	)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dec.Close)
	s.zdec = dec

	s.spool = t.TempDir()
	if err := os.Chmod(s.spool, 0o700); err != nil {
		t.Fatal(err)
	}
	s.configurePlugin(t)
	return s
}

// removeLeftovers removes containers left by earlier, interrupted runs.
func (s *suite) removeLeftovers(t *testing.T) {
	ids := strings.Fields(string(docker(t, "ps", "-aq", "--filter", "label="+labelKey)))
	if len(ids) > 0 {
		t.Logf("removing %d containers left by an earlier run", len(ids))
		docker(t, append([]string{"rm", "-f"}, ids...)...)
	}
}

// buildImage builds cmd/loggen statically and the FROM scratch test image.
func (s *suite) buildImage(t *testing.T) {
	ctxDir := t.TempDir()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	cmd := exec.Command(goTool, "build", "-trimpath", "-o", filepath.Join(ctxDir, "loggen"), "../cmd/loggen")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build loggen: %v\n%s", err, out)
	}
	docker(t, "build", "-q", "-t", s.image, "-f", "testdata/Dockerfile.loggen", ctxDir)
	// Drop the image an earlier build left untagged (only ours carry the label).
	docker(t, "image", "prune", "-f", "--filter", "label=s3logs.build")
}

// configurePlugin sets the MinIO credentials and the temporary spool on the
// plugin and restores the earlier settings when t ends.
func (s *suite) configurePlugin(t *testing.T) {
	prev := s.inspectPlugin(t)
	restore := prev.Saved("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "spool.source")
	for i, kv := range restore {
		if src, ok := strings.CutPrefix(kv, "spool.source="); ok {
			if _, err := os.Stat(src); err != nil {
				// Left by an interrupted run (a removed temporary folder):
				// restore the default instead, or enable would fail.
				if err := os.MkdirAll(defaultSpool, 0o700); err != nil {
					t.Fatal(err)
				}
				restore[i] = "spool.source=" + defaultSpool
			}
		}
	}
	s.setPlugin(t,
		"AWS_ACCESS_KEY_ID="+s.minio.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+s.minio.SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_REGION="+s.minio.Region,
		"spool.source="+s.spool,
	)
	t.Cleanup(func() {
		// Containers are gone by now (their cleanups ran first).
		if len(restore) > 0 {
			s.setPlugin(t, restore...)
		}
		if !prev.Enabled {
			docker(t, "plugin", "disable", "--force", s.plugin)
		}
	})
}

// inspectPlugin returns the plugin's current state.
func (s *suite) inspectPlugin(t testing.TB) dockerplugin.Plugin {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	p, err := dockerplugin.Inspect(ctx, s.plugin)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// setPlugin disables the plugin, applies the settings and enables it.
func (s *suite) setPlugin(t testing.TB, settings ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*cmdTimeout)
	defer cancel()
	if err := dockerplugin.Set(ctx, s.plugin, settings...); err != nil {
		t.Fatal(err)
	}
}

// bucketName makes a valid, run-unique bucket name from a test tag.
func (s *suite) bucketName(tag string) string {
	b := []byte("e2e-" + s.runID + "-" + strings.ToLower(tag))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return strings.TrimRight(string(b), "-")
}

// createBucket creates a bucket with the shared client.
func (s *suite) createBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// container is one test container logging through the plugin.
type container struct {
	s      *suite
	name   string
	bucket string
	prefix string // key prefix to list ("" for the whole bucket)
	spec   loggen.Spec
}

// containerName is the run-unique docker name for a test tag.
func (s *suite) containerName(tag string) string {
	return "s3logs-e2e-" + s.runID + "-" + tag
}

// runArgs builds `docker run -d` arguments with the suite's defaults
// (endpoint, network none, label) and the given log-opts; opts override
// nothing implicitly: pass every log-opt you want.
func (s *suite) runArgs(name string, opts []string, spec loggen.Spec) []string {
	args := []string{"run", "-d", "--name", name, "--label", labelKey + "=" + s.runID,
		"--network", "none", "--log-driver", s.plugin}
	for _, o := range opts {
		args = append(args, "--log-opt", o)
	}
	args = append(args, s.image)
	return append(args, spec.Args()...)
}

// start creates a bucket (unless shared is set) and starts a container that
// logs spec to it, with log-opts endpoint, bucket and extra.
func (s *suite) start(t testing.TB, tag string, spec loggen.Spec, extra ...string) *container {
	t.Helper()
	c := &container{s: s, name: s.containerName(tag), bucket: s.bucketName(tag), spec: spec}
	s.createBucket(t, c.bucket)
	c.run(t, extra...)
	return c
}

// run starts c (bucket already created) with the default log-opts plus extra.
func (c *container) run(t testing.TB, extra ...string) {
	t.Helper()
	if c.spec.Tag == "" {
		c.spec.Tag = c.name
	}
	t.Cleanup(func() {
		if _, _, err := run(context.Background(), nil, "docker", "rm", "-f", c.name); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	opts := append([]string{"endpoint=" + c.s.minio.Endpoint, "bucket=" + c.bucket}, extra...)
	docker(t, c.s.runArgs(c.name, opts, c.spec)...)
}

// wait waits for the container to exit, requires exit status 0 and returns
// the time docker wait returned.
func (c *container) wait(t testing.TB) time.Time {
	t.Helper()
	out := docker(t, "wait", c.name)
	at := time.Now()
	if code := strings.TrimSpace(string(out)); code != "0" {
		t.Fatalf("container %s exited with %s", c.name, code)
	}
	return at
}

// stop runs docker stop and returns the time it returned; the generator
// exits 0 on SIGTERM.
func (c *container) stop(t testing.TB) time.Time {
	t.Helper()
	docker(t, "stop", "-t", "10", c.name)
	at := time.Now()
	if code := strings.TrimSpace(string(docker(t, "inspect", "-f", "{{.State.ExitCode}}", c.name))); code != "0" {
		t.Fatalf("container %s exited with %s after docker stop", c.name, code)
	}
	return at
}

// running reports whether the container is running.
func (c *container) running(t testing.TB) bool {
	t.Helper()
	return strings.TrimSpace(string(docker(t, "inspect", "-f", "{{.State.Running}}", c.name))) == "true"
}

// waitReport waits up to limit until c's generator has written its report
// (spec.Report): it has stopped writing, and with Sleep waits for SIGTERM.
func (c *container) waitReport(t testing.TB, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, _, err := run(t.Context(), nil, "docker", "cp", c.name+":"+c.spec.Report, "-")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not finish writing within %v: %v", c.name, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reportedLines reads the generator's report file (spec.Report) out of the
// stopped container with docker cp.
func (c *container) reportedLines(t testing.TB) int {
	t.Helper()
	out := docker(t, "cp", c.name+":"+c.spec.Report, "-")
	tr := tar.NewReader(bytes.NewReader(out))
	if _, err := tr.Next(); err != nil {
		t.Fatalf("docker cp %s: %v", c.spec.Report, err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		t.Fatalf("docker cp %s: %v", c.spec.Report, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("report %q: %v", b, err)
	}
	return n
}

// id returns the container's full id.
func (c *container) id(t testing.TB) string {
	t.Helper()
	return strings.TrimSpace(string(docker(t, "inspect", "-f", "{{.Id}}", c.name)))
}

// dockerLogs returns `docker logs` output split by stream.
func (c *container) dockerLogs(t testing.TB) (stdout, stderr []byte) {
	t.Helper()
	out, errOut, err := run(context.Background(), nil, "docker", "logs", c.name)
	if err != nil {
		t.Fatal(err)
	}
	return out, errOut
}

// record is one json-file line.
type record struct {
	Log    string            `json:"log"`
	Stream string            `json:"stream"`
	Time   string            `json:"time"`
	Attrs  map[string]string `json:"attrs,omitempty"`
}

// streams is the concatenated "log" of each stream plus bookkeeping.
type streams struct {
	out, err    []byte
	records     int
	first, last map[string]time.Time // per stream
}

// merge appends o, the streams of the next object in key order, to st and
// checks that time does not go backwards across the boundary.
func (st *streams) merge(o *streams) error {
	if st.last == nil {
		st.first, st.last = map[string]time.Time{}, map[string]time.Time{}
	}
	for name, ts := range o.first {
		if ts.Before(st.last[name]) {
			return fmt.Errorf("%s record at %s follows one at %s in an earlier key (order not preserved)", name, ts, st.last[name])
		}
		if _, ok := st.first[name]; !ok {
			st.first[name] = ts
		}
	}
	for name, ts := range o.last {
		st.last[name] = ts
	}
	st.out = append(st.out, o.out...)
	st.err = append(st.err, o.err...)
	st.records += o.records
	return nil
}

// add decodes one object's (or a concatenation's) JSON lines into st. It
// checks the json-file line format strictly: every line ends with '\n',
// holds only log/stream/time/attrs, stream is stdout or stderr, time is
// RFC 3339 UTC and does not go backwards within a stream.
func (st *streams) add(data []byte) error {
	if len(data) == 0 {
		return errors.New("empty segment")
	}
	if data[len(data)-1] != '\n' {
		return fmt.Errorf("segment does not end with a newline: ...%q", data[max(0, len(data)-80):])
	}
	if st.last == nil {
		st.first, st.last = map[string]time.Time{}, map[string]time.Time{}
	}
	for line := range bytes.Lines(data) {
		var r record
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("record %d %q: %w", st.records, trunc(line), err)
		}
		if dec.More() {
			return fmt.Errorf("record %d %q: trailing data", st.records, trunc(line))
		}
		ts, err := time.Parse(time.RFC3339Nano, r.Time)
		if err != nil || !strings.HasSuffix(r.Time, "Z") {
			return fmt.Errorf("record %d: time %q is not RFC 3339 UTC: %v", st.records, r.Time, err)
		}
		if ts.Before(st.last[r.Stream]) {
			return fmt.Errorf("record %d: %s time %s before previous %s (order not preserved)", st.records, r.Stream, ts, st.last[r.Stream])
		}
		st.last[r.Stream] = ts
		if _, ok := st.first[r.Stream]; !ok {
			st.first[r.Stream] = ts
		}
		switch r.Stream {
		case "stdout":
			st.out = append(st.out, r.Log...)
		case "stderr":
			st.err = append(st.err, r.Log...)
		default:
			return fmt.Errorf("record %d: stream %q", st.records, r.Stream)
		}
		st.records++
	}
	return nil
}

func trunc(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

// object is one listed S3 object.
type object struct {
	Key  string
	ETag string
	Size int64
}

// list lists the objects under bucket/prefix in key order.
func (s *suite) list(ctx context.Context, bucket, prefix string) ([]object, error) {
	var objs []object
	p := s3.NewListObjectsV2Paginator(s.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("ListObjectsV2 %s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			objs = append(objs, object{Key: aws.ToString(o.Key), ETag: aws.ToString(o.ETag), Size: aws.ToInt64(o.Size)})
		}
	}
	slices.SortFunc(objs, func(a, b object) int { return strings.Compare(a.Key, b.Key) })
	return objs, nil
}

// getObject returns an object's body and user metadata.
func (s *suite) getObject(ctx context.Context, bucket, key string) (body []byte, meta map[string]string, err error) {
	resp, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, nil, fmt.Errorf("GetObject %s/%s: %w", bucket, key, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("GetObject %s/%s: %w", bucket, key, err)
	}
	return body, resp.Metadata, nil
}

// fetcher reads a container's objects with the Go client, caching each
// object's decoded streams by key and ETag so polling downloads and parses
// each object once.
type fetcher struct {
	c     *container
	cache map[string]*streams
}

// snapshot lists and decodes every object of the container in key order. It
// also returns when the listing returned, an upper bound for the time every
// listed object was in the bucket.
func (f *fetcher) snapshot(ctx context.Context) ([]object, *streams, time.Time, error) {
	objs, err := f.c.s.list(ctx, f.c.bucket, f.c.prefix)
	listedAt := time.Now()
	if err != nil {
		return nil, nil, listedAt, err
	}
	st := &streams{}
	for _, o := range objs {
		ck := o.Key + "\x00" + o.ETag
		parsed, ok := f.cache[ck]
		if !ok {
			raw, _, err := f.c.s.getObject(ctx, f.c.bucket, o.Key)
			if err != nil {
				return nil, nil, listedAt, err
			}
			body, err := f.c.s.zdec.DecodeAll(raw, nil)
			if err != nil {
				return nil, nil, listedAt, fmt.Errorf("zstd decode %s/%s: %w", f.c.bucket, o.Key, err)
			}
			parsed = &streams{}
			if err := parsed.add(body); err != nil {
				return nil, nil, listedAt, fmt.Errorf("object %s/%s: %w", f.c.bucket, o.Key, err)
			}
			f.cache[ck] = parsed
		}
		if err := st.merge(parsed); err != nil {
			return nil, nil, listedAt, fmt.Errorf("object %s/%s: %w", f.c.bucket, o.Key, err)
		}
	}
	return objs, st, listedAt, nil
}

// waitContent polls S3 until the container's objects hold exactly wantOut
// and wantErr. The content must be complete in a listing taken by deadline;
// otherwise the test fails with a description of the difference. It
// returns the objects and how long after since that listing was taken.
func (c *container) waitContent(t testing.TB, since, deadline time.Time, wantOut, wantErr []byte) ([]object, time.Duration) {
	t.Helper()
	f := &fetcher{c: c, cache: map[string]*streams{}}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		objs, st, listedAt, err := f.snapshot(ctx)
		cancel()
		if err == nil && bytes.Equal(st.out, wantOut) && bytes.Equal(st.err, wantErr) {
			if listedAt.After(deadline) {
				t.Fatalf("%s: content complete only %v after start of wait, deadline was %v",
					c.name, listedAt.Sub(since).Round(time.Millisecond), deadline.Sub(since))
			}
			return objs, listedAt.Sub(since)
		}
		if now := time.Now(); now.After(deadline) {
			if err != nil {
				t.Fatalf("%s: after %v: %v", c.name, now.Sub(since).Round(time.Millisecond), err)
			}
			t.Fatalf("%s: content not complete %v after start of wait (%d objects, %d records):\nstdout: %s\nstderr: %s",
				c.name, now.Sub(since).Round(time.Millisecond), len(objs), st.records,
				diff(st.out, wantOut), diff(st.err, wantErr))
		}
		time.Sleep(pollInterval)
	}
}

// diff describes how got differs from want, briefly.
func diff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return fmt.Sprintf("equal (%d bytes)", len(got))
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-60)
	return fmt.Sprintf("got %d bytes, want %d; first difference at offset %d:\n  got  %q\n  want %q",
		len(got), len(want), i, got[lo:min(len(got), i+60)], want[lo:min(len(want), i+60)])
}

// verifyCLI downloads the container's objects with `aws s3 cp --recursive`,
// decompresses them in key order with one `zstd -dc`, and compares the
// streams byte for byte; the downloaded keys must be exactly objs. It
// returns the decoded streams.
func (c *container) verifyCLI(t testing.TB, objs []object, wantOut, wantErr []byte) *streams {
	t.Helper()
	dir := t.TempDir()
	src := "s3://" + c.bucket + "/" + c.prefix
	if _, _, err := run(context.Background(), c.s.awsEnv, "aws", "s3", "cp", "--recursive", "--only-show-errors",
		"--endpoint-url", c.s.minio.Endpoint, src, dir); err != nil {
		t.Fatal(err)
	}
	var keys []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		keys = append(keys, c.prefix+filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	var want []string
	for _, o := range objs {
		want = append(want, o.Key)
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("aws s3 cp fetched keys %q, listing has %q", keys, want)
	}
	if len(keys) == 0 {
		t.Fatal("no objects")
	}
	files := make([]string, len(keys))
	for i, k := range keys {
		files[i] = filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(k, c.prefix)))
	}
	out, _, err := run(context.Background(), nil, "zstd", append([]string{"-dcq", "--"}, files...)...)
	if err != nil {
		t.Fatal(err)
	}
	st := &streams{}
	if err := st.add(out); err != nil {
		t.Fatalf("aws s3 cp | zstd -dc output: %v", err)
	}
	if !bytes.Equal(st.out, wantOut) || !bytes.Equal(st.err, wantErr) {
		t.Fatalf("aws s3 cp | zstd -dc differs:\nstdout: %s\nstderr: %s", diff(st.out, wantOut), diff(st.err, wantErr))
	}
	return st
}

// expectJSONFile maps what a container wrote to what json-file (and so
// s3logs) stores: each byte that is not part of valid UTF-8 becomes U+FFFD.
func expectJSONFile(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// walkSpool calls fn for each entry under root, a folder of a spool the
// plugin changes meanwhile, with its path relative to root. An entry
// removed while listed (a segment uploaded, a folder emptied) is skipped,
// and a missing root has no entries.
func walkSpool(root string, fn func(rel string, d fs.DirEntry) error) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		return fn(rel, d)
	})
}

// checkSpoolDrained waits until the plugin's spool holds nothing but its
// lock and sequence counter (segments/.lock, segments/.seq): every segment
// was uploaded and deleted, every container folder removed, and no stream
// state is left once the containers are gone. It fails after exitBound,
// listing what is left.
func (s *suite) checkSpoolDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(exitBound)
	for {
		var left []string
		err := walkSpool(s.spool, func(rel string, d fs.DirEntry) error {
			switch {
			case rel == "segments/.lock", rel == "segments/.seq":
			case d.IsDir() && filepath.Dir(rel) == "segments" && rel != "segments/_quarantine":
				left = append(left, rel+"/") // a container folder
			case !d.IsDir():
				left = append(left, rel)
			}
			return nil
		})
		if err != nil {
			t.Errorf("walk spool: %v", err)
			return
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("spool %s not drained after all containers were removed: %q", s.spool, left)
			return
		}
		time.Sleep(pollInterval)
	}
}
