// Package s3client builds the S3 clients s3logs uses, so that the plugin's
// uploader and the log reader (CLI and ReadLogs) address S3 the same way.
//
// A Target names where requests go: region, endpoint and addressing style.
// A Factory creates one client per Target on first use and reuses it.
// Credentials come from the AWS SDK's default chain (environment, shared
// config and credentials files with AWS_PROFILE, SSO, web identity, ECS,
// EC2 instance roles). The region is Target.Region, else the chain's region
// (AWS_REGION, AWS_DEFAULT_REGION, the profile's region), else DefaultRegion.
// The endpoint is Target.Endpoint, else the SDK's own (AWS_ENDPOINT_URL,
// AWS_ENDPOINT_URL_S3, the profile's endpoint_url), else AWS. Flexible
// checksums are computed and validated only when an operation requires
// them: s3logs sends Content-MD5 itself, which every S3-compatible store
// understands.
package s3client

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// DefaultRegion is the region used when neither the Target nor the SDK's
// configuration chain names one. It is s3logs' only region default.
const DefaultRegion = "us-east-1"

// Target says where S3 requests go. The zero value is AWS, with the region
// from the SDK's chain. Target is comparable and used as a map key.
type Target struct {
	// Region is the S3 region; "" lets the SDK's chain choose (see the
	// package documentation).
	Region string
	// Endpoint is the base URL of an S3-compatible server; a value without
	// a scheme gets "https://". "" uses the SDK's endpoint resolution.
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket instead of
	// bucket.endpoint.
	PathStyle bool
}

// Options configure a Factory. The zero value selects every default.
type Options struct {
	// MaxAttempts is the number of attempts the SDK makes per request.
	// 0 selects the SDK's standard retryer (3 attempts with backoff); 1
	// turns the SDK's retries off, for callers that retry themselves.
	MaxAttempts int
}

// Factory creates S3 clients, one per Target, and keeps them for reuse.
// It is safe for concurrent use. The zero value is ready to use with the
// default Options.
type Factory struct {
	opts Options

	mu         sync.Mutex // guards clients and transports
	clients    map[Target]*s3.Client
	transports []*http.Transport
}

// NewFactory returns a Factory with the given options.
func NewFactory(opts Options) *Factory { return &Factory{opts: opts} }

// Client returns the client of t, creating it on first use. ctx bounds
// the loading of the SDK's configuration (shared files, IMDS region).
func (f *Factory) Client(ctx context.Context, t Target) (*s3.Client, error) {
	f.mu.Lock()
	c, ok := f.clients[t]
	f.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := f.newClient(ctx, t)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev, ok := f.clients[t]; ok {
		return prev, nil // another caller won the race; theirs is kept
	}
	if f.clients == nil {
		f.clients = make(map[Target]*s3.Client)
	}
	f.clients[t] = c
	return c, nil
}

// newClient builds the client of t. The HTTP client is the SDK's buildable
// client, so that AWS_CA_BUNDLE and similar settings still apply; its
// transports are remembered for CloseIdle.
func (f *Factory) newClient(ctx context.Context, t Target) (*s3.Client, error) {
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		f.mu.Lock()
		f.transports = append(f.transports, tr)
		f.mu.Unlock()
	})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(hc),
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	switch {
	case f.opts.MaxAttempts == 1:
		opts = append(opts, config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	case f.opts.MaxAttempts > 1:
		opts = append(opts, config.WithRetryMaxAttempts(f.opts.MaxAttempts))
	}
	if t.Region != "" {
		opts = append(opts, config.WithRegion(t.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3client: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if t.Endpoint != "" {
			ep := t.Endpoint
			if !strings.Contains(ep, "://") {
				ep = "https://" + ep
			}
			o.BaseEndpoint = aws.String(ep)
		}
		o.UsePathStyle = t.PathStyle
	}), nil
}

// CloseIdle closes the idle connections of every client created so far.
// The clients stay usable.
func (f *Factory) CloseIdle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tr := range f.transports {
		tr.CloseIdleConnections()
	}
}
