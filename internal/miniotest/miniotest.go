// Package miniotest starts throwaway MinIO servers for the integration and
// end-to-end tests and for the benchmark harness.
//
// The MinIO version is pinned in one place, the file minio.module in this
// folder (see Module), which the Makefile reads too. The binary is built on
// demand into <repo root>/bin; MinIO is AGPL-licensed and is only ever run
// as a separate process, never imported.
//
// Tests call Start, which reports problems with tb.Fatal and never skips:
// integration tests that depend on MinIO must run in CI. Programs that are
// not tests (the benchmark harness) call Launch and Close.
package miniotest

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// moduleFile is minio.module: one line, the pinned module@version. It is
// read-only; Module returns it trimmed.
//
//go:embed minio.module
var moduleFile string

// Module returns the pinned MinIO module and version ("module@version"),
// the single line of minio.module. Binary builds it; `make minio` builds
// the same from the same file.
func Module() string { return strings.TrimSpace(moduleFile) }

// ReadyTimeout bounds how long Launch, Start and Restart wait for the
// server to answer its readiness probe.
const ReadyTimeout = 60 * time.Second

// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const stopTimeout = 10 * time.Second

// Binary returns the path of the pinned MinIO binary: $MINIO_BIN if set,
// else <repo root>/bin/minio, where the repo root is the nearest folder
// above the working directory that holds go.mod. When that file is missing
// it is built with `go install` of Module (about 2.5 minutes), under an
// exclusive file lock (<repo root>/bin/.minio.lock) so that goroutines and
// test binaries running in parallel build it once. Any failure is fatal;
// Binary never skips. It is safe for concurrent use.
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("MINIO_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			tb.Fatalf("miniotest: MINIO_BIN=%s: %v", p, err)
		}
		return p
	}
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("miniotest: %v", err)
	}
	binDir := filepath.Join(root, "bin")
	bin := filepath.Join(binDir, "minio")
	if isExecutable(bin) {
		return bin
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		tb.Fatalf("miniotest: %v", err)
	}
	// flock(2) locks belong to the open file description, so this lock also
	// serialises goroutines of one process, each with its own open.
	lock, err := os.OpenFile(filepath.Join(binDir, ".minio.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		tb.Fatalf("miniotest: %v", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		tb.Fatalf("miniotest: lock %s: %v", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if isExecutable(bin) { // built by someone else while we waited
		return bin
	}
	mod := Module()
	tb.Logf("miniotest: building %s into %s (takes a few minutes)", mod, binDir)
	start := time.Now()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		goTool = "go"
	}
	cmd := exec.Command(goTool, "install", mod)
	cmd.Env = append(os.Environ(), "GOBIN="+binDir, "CGO_ENABLED=0")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("miniotest: go install %s: %v\n%s", mod, err, out)
	}
	if !isExecutable(bin) {
		tb.Fatalf("miniotest: go install %s succeeded but %s is missing", mod, bin)
	}
	tb.Logf("miniotest: built MinIO in %s", time.Since(start).Round(time.Second))
	return bin
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// repoRoot walks up from the working directory to the folder holding go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; set MINIO_BIN")
		}
		dir = parent
	}
}

// Server is a MinIO server running as a child process on 127.0.0.1.
// Its fields are set by Launch and must not be changed. A Server is meant
// for one goroutine; Stop, Restart, Close and the client constructors must
// not be called concurrently with each other.
type Server struct {
	// Endpoint is the S3 endpoint URL, e.g. "http://127.0.0.1:41234".
	Endpoint string
	// AccessKey and SecretKey are the root credentials (random per server).
	AccessKey, SecretKey string
	// Region is the region the server accepts in signatures ("us-east-1").
	Region string
	// DataDir is the server's data folder; it survives Stop and Restart and
	// is removed by Close.
	DataDir string
	// KMSKey is the name of the server's KMS key (Options.KMSKey), "" when
	// it has none.
	KMSKey string

	kmsSecret string // MINIO_KMS_SECRET_KEY, kept for Restart

	bin         string
	dir         string // holds DataDir, the certs folder and the log; removed by Close
	addr        string
	consoleAddr string
	certsDir    string
	logPath     string
	cmd         *exec.Cmd
	exited      chan struct{} // closed when cmd has been waited for
}

// Options change the server Launch starts. The zero value gives random
// root credentials and no KMS.
type Options struct {
	// KMSKey, when set, gives the server a built-in KMS key of that name
	// (MINIO_KMS_SECRET_KEY with 32 random bytes), so that it takes
	// PutObject with server-side encryption: ServerSideEncryption AES256,
	// or aws:kms with SSEKMSKeyId KMSKey. Letters, digits, '-' and '_'.
	KMSKey string
	// AccessKey and SecretKey, when both set, are the root credentials
	// instead of random ones: a client configured for another Server
	// then works with this one too.
	AccessKey, SecretKey string
}

// Launch starts the MinIO binary bin on a free port of 127.0.0.1 with a
// new temporary folder for its data and random root credentials, and waits
// until it is ready (deadline ReadyTimeout). The caller must Close it; its
// process is also killed when the calling process dies.
func Launch(bin string) (*Server, error) { return LaunchOptions(bin, Options{}) }

// LaunchOptions is Launch with opts.
func LaunchOptions(bin string, opts Options) (*Server, error) {
	dir, err := os.MkdirTemp("", "s3logs-minio-")
	if err != nil {
		return nil, fmt.Errorf("miniotest: %w", err)
	}
	s := &Server{
		Region:   "us-east-1",
		DataDir:  filepath.Join(dir, "data"),
		bin:      bin,
		dir:      dir,
		certsDir: filepath.Join(dir, "certs"),
		logPath:  filepath.Join(dir, "minio.log"),
	}
	fail := func(err error) (*Server, error) {
		tail := s.logTail()
		s.Close()
		return nil, fmt.Errorf("miniotest: start MinIO: %w\n%s", err, tail)
	}
	if s.AccessKey, err = randHex(8); err != nil {
		return fail(err)
	}
	s.AccessKey = "mt" + s.AccessKey
	if s.SecretKey, err = randHex(20); err != nil {
		return fail(err)
	}
	if opts.AccessKey != "" && opts.SecretKey != "" {
		s.AccessKey, s.SecretKey = opts.AccessKey, opts.SecretKey
	}
	if opts.KMSKey != "" {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return fail(err)
		}
		s.KMSKey = opts.KMSKey
		s.kmsSecret = opts.KMSKey + ":" + base64.StdEncoding.EncodeToString(key)
	}
	for _, d := range []string{s.DataDir, s.certsDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fail(err)
		}
	}
	for range 3 { // a free port can be taken between probing and binding
		if s.addr, err = freeAddr(); err != nil {
			return fail(err)
		}
		if s.consoleAddr, err = freeAddr(); err != nil {
			return fail(err)
		}
		s.Endpoint = "http://" + s.addr
		if err = s.launch(); err == nil {
			return s, nil
		}
		s.kill()
	}
	return fail(err)
}

// Start builds MinIO if needed (see Binary) and launches a server (see
// Launch); a failure is fatal. tb.Cleanup closes the server.
func Start(tb testing.TB) *Server {
	tb.Helper()
	return StartOptions(tb, Options{})
}

// StartOptions is Start with opts (see LaunchOptions).
func StartOptions(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := LaunchOptions(Binary(tb), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("miniotest: %v", err)
		}
	})
	return s
}

// Stop stops the server (SIGTERM, then SIGKILL of its process group after
// 10 s) and waits for it to exit. The data folder is kept, so Restart
// brings the same buckets and objects back. Stopping a stopped server is a
// no-op.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
	}
	s.kill()
}

// Restart starts the server again on the same address with the same data
// folder and credentials (stopping it first if it runs) and waits until it
// is ready.
func (s *Server) Restart() error {
	s.Stop()
	var err error
	for range 20 { // the old listener may take a moment to be released
		if err = s.launch(); err == nil {
			return nil
		}
		s.kill()
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("miniotest: restart MinIO on %s: %w\n%s", s.addr, err, s.logTail())
}

// Close kills the server and removes its folder with the data. Closing a
// closed server is a no-op.
func (s *Server) Close() error {
	s.kill()
	if s.dir == "" {
		return nil
	}
	err := os.RemoveAll(s.dir)
	s.dir = ""
	return err
}

// Client returns an S3 client for the server (see NewClient) whose idle
// connections are closed by tb.Cleanup.
func (s *Server) Client(tb testing.TB) *s3.Client {
	tb.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(tr.CloseIdleConnections)
	return s.NewClient(&http.Client{Transport: tr})
}

// NewClient returns an S3 client for the server that sends its requests
// with hc (nil: the SDK's default client): path-style addressing, the
// server's root credentials, region s.Region.
func (s *Server) NewClient(hc *http.Client) *s3.Client {
	o := s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		// Only what S3 requires: keeps the client usable with any MinIO version.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if hc != nil {
		o.HTTPClient = hc
	}
	return s3.New(o)
}

// CreateBucket creates a bucket on the server; failure is fatal. While
// MinIO says it is still initialising (it may, for a moment after its
// readiness endpoint answered 200), it tries again, for up to 30 s.
func (s *Server) CreateBucket(tb testing.TB, name string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Client(tb)
	for {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
		var ae smithy.APIError
		if err != nil && errors.As(err, &ae) && ae.ErrorCode() == "XMinioServerNotInitialized" && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			tb.Fatalf("miniotest: create bucket %s: %v", name, err)
		}
		return
	}
}

// launch starts the process and waits until it is ready.
func (s *Server) launch() error {
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(s.bin, "server", s.DataDir,
		"--address", s.addr,
		"--console-address", s.consoleAddr,
		"--certs-dir", s.certsDir,
		"--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_REGION="+s.Region,
		"MINIO_UPDATE=off",
		"MINIO_BROWSER=off",
	)
	if s.kmsSecret != "" {
		cmd.Env = append(cmd.Env, "MINIO_KMS_SECRET_KEY="+s.kmsSecret)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited
	return s.waitReady()
}

// waitReady polls the readiness endpoint until it answers 200, the process
// exits, or ReadyTimeout passes.
func (s *Server) waitReady() error {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Second}
	deadline := time.Now().Add(ReadyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("MinIO exited during start-up (%v)", s.cmd.ProcessState)
		default:
		}
		resp, err := hc.Get(s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("MinIO not ready within %s", ReadyTimeout)
}

// kill SIGKILLs the process group, if any, and waits for the process.
func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// logTail returns the end of the server's output, for failure messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return string(b)
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

func randHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// SetEnv points the AWS SDK's default chain at the server for the rest of
// the test: its credentials, no region, profile or shared files, no IMDS.
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": s.AccessKey, "AWS_SECRET_ACCESS_KEY": s.SecretKey, "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
	} {
		t.Setenv(k, v)
	}
}
