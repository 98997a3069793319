package logopt

import (
	"errors"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/keys"
)

// Option names accepted by the s3logs driver.
const (
	OptBucket           = "bucket"
	OptRegion           = "region"
	OptEndpoint         = "endpoint"
	OptForcePathStyle   = "force-path-style"
	OptPrefix           = "prefix"
	OptSegmentSize      = "segment-size"
	OptSegmentAge       = "segment-age"
	OptCompressionLevel = "compression-level"
	OptStorageClass     = "storage-class"
	OptSSE              = "sse"
	OptSSEKMSKeyID      = "sse-kms-key-id"
	OptLabels           = "labels"
	OptLabelsRegex      = "labels-regex"
	OptEnv              = "env"
	OptEnvRegex         = "env-regex"
)

// Docker's own options. The daemon puts them in the same map; Parse accepts
// and ignores them.
const (
	DockerMode          = "mode"
	DockerMaxBufferSize = "max-buffer-size"
	DockerCacheDisabled = "cache-disabled"
	DockerCacheMaxSize  = "cache-max-size"
	DockerCacheMaxFile  = "cache-max-file"
	DockerCacheCompress = "cache-compress"
)

// Defaults and bounds.
const (
	DefaultSegmentSize = 64 << 20 // 64 MiB
	MinSegmentSize     = 64 << 10 // 64 KiB
	MaxSegmentSize     = 5 << 30  // 5 GiB, the S3 PutObject limit
	DefaultSegmentAge  = 5 * time.Minute
	MinSegmentAge      = time.Second
	MaxSegmentAge      = 24 * time.Hour
)

// SSE values.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

// Options is a validated log-opt map. Treat it as read-only: it is shared by
// every goroutine of a stream and safe for concurrent use.
type Options struct {
	Bucket string // S3 bucket name; required
	Region string // S3 region; "" lets the uploader choose
	// Endpoint is the base URL of an S3-compatible server, e.g.
	// "http://127.0.0.1:9000"; "" means AWS.
	Endpoint string
	// ForcePathStyle addresses objects as endpoint/bucket/key rather than
	// bucket.endpoint/key. Default: true when Endpoint is set, else false.
	ForcePathStyle bool

	PrefixTemplate string       // the prefix template; default keys.DefaultPrefix
	Prefix         *keys.Prefix // PrefixTemplate, parsed

	SegmentSize int64         // seal a segment at this many compressed bytes; default 64 MiB
	SegmentAge  time.Duration // seal a segment this long after its first record; default 5m
	// CompressionLevel of the zstd encoder; default zstd.SpeedFastest, whose
	// ratio on log records is within 3% of zstd -3 at about 1.3x the speed
	// of zstd.SpeedDefault (README, Performance).
	CompressionLevel zstd.EncoderLevel

	StorageClass string // S3 storage class, upper case; "" leaves the bucket's default
	SSE          string // "", SSEAES256 or SSEKMS
	SSEKMSKeyID  string // KMS key for SSEKMS; "" means the AWS managed key

	// The attrs selection, as for Docker's json-file driver: label names,
	// a regexp over label names, environment variable names, a regexp over
	// variable names. Nil or empty selects nothing. See Attrs.
	Labels      []string
	LabelsRegex *regexp.Regexp
	Env         []string
	EnvRegex    *regexp.Regexp
}

// Attrs returns the labels and environment variables selected by the labels,
// labels-regex, env and env-regex options, with exactly the semantics of
// Docker's logger.Info.ExtraAttributes (used by json-file for "attrs"):
//
//   - labels: comma-separated names, used verbatim (no trimming); each name
//     present in labels is added.
//   - labels-regex: every label whose name matches (unanchored) is added.
//   - env and env-regex: the same over env, where each "NAME=value" entry is
//     split at the first "="; entries without "=" are skipped and a later
//     entry for the same name wins.
//   - Applied in the order labels, labels-regex, env, env-regex: on a name
//     collision an environment variable wins over a label.
//
// The result is never nil. Attrs is safe for concurrent use.
func (o *Options) Attrs(labels map[string]string, env []string) map[string]string {
	extra := make(map[string]string)
	for _, l := range o.Labels {
		if v, ok := labels[l]; ok {
			extra[l] = v
		}
	}
	if o.LabelsRegex != nil {
		for k, v := range labels {
			if o.LabelsRegex.MatchString(k) {
				extra[k] = v
			}
		}
	}
	if len(o.Env) == 0 && o.EnvRegex == nil {
		return extra
	}
	envMapping := make(map[string]string, len(env))
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok {
			envMapping[k] = v
		}
	}
	for _, l := range o.Env {
		if v, ok := envMapping[l]; ok {
			extra[l] = v
		}
	}
	if o.EnvRegex != nil {
		for k, v := range envMapping {
			if o.EnvRegex.MatchString(k) {
				extra[k] = v
			}
		}
	}
	return extra
}

// Accepted forms, as the error messages state them.
const (
	wantBucket      = "an S3 bucket name: 3 to 63 characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit, without \"..\", not an IP address"
	wantRegion      = "an S3 region such as us-east-1 (letters, digits and '-')"
	wantEndpoint    = "an http or https URL with a host and no credentials, path or query, e.g. http://127.0.0.1:9000 or https://s3.example.com"
	wantBool        = "true or false"
	wantPrefix      = "a Go template of at most 4096 bytes using {{.Name}}, {{.ID}}, {{.FullID}}, {{.ImageName}}, {{.ImageID}}, {{.ImageFullID}}, {{.DaemonName}}, {{.Hostname}}, {{.Year}}, {{.Month}}, {{.Day}}, {{.Hour}}, {{if}}/{{else}} and the functions " + keys.PrefixFuncs + " (no range, with, define, template, block or variables)"
	wantSize        = "a size such as 512k, 64m or 1g (64k to 5g)"
	wantAge         = "a duration such as 30s, 5m or 1h (1s to 24h)"
	wantCompression = "fastest, default, better or best"
	wantSSE         = "AES256 or aws:kms"
	wantKMSKeyID    = "a KMS key id, ARN or alias without spaces"
	wantKMSWithSSE  = "sse=aws:kms together with sse-kms-key-id"
	wantRegex       = "a Go regular expression (RE2 syntax)"

	credentialsHint = "credentials do not belong in log-opts (anyone can read them with docker inspect): set them as plugin settings (docker plugin set)"
)

// storageClasses are the S3 storage classes, in the AWS SDK's order.
var storageClasses = []string{
	"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
	"GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE",
}

var wantStorageClass = "one of " + strings.Join(storageClasses, ", ")

var compressionLevels = map[string]zstd.EncoderLevel{
	"fastest": zstd.SpeedFastest,
	"default": zstd.SpeedDefault,
	"better":  zstd.SpeedBetterCompression,
	"best":    zstd.SpeedBestCompression,
}

// parser validates one option's value into o. It returns nil or a *Error.
type parser func(o *Options, opt, val string) *Error

// table lists the s3logs options in the order their problems are reported.
var table = []struct {
	name  string
	parse parser
}{
	{OptBucket, parseBucket},
	{OptRegion, parseRegion},
	{OptEndpoint, parseEndpoint},
	{OptForcePathStyle, parseForcePathStyle},
	{OptPrefix, parsePrefix},
	{OptSegmentSize, parseSegmentSize},
	{OptSegmentAge, parseSegmentAge},
	{OptCompressionLevel, parseCompressionLevel},
	{OptStorageClass, parseStorageClass},
	{OptSSE, parseSSE},
	{OptSSEKMSKeyID, parseSSEKMSKeyID},
	{OptLabels, func(o *Options, _, val string) *Error { o.Labels = splitList(val); return nil }},
	{OptLabelsRegex, func(o *Options, opt, val string) *Error { return parseRegex(&o.LabelsRegex, opt, val) }},
	{OptEnv, func(o *Options, _, val string) *Error { o.Env = splitList(val); return nil }},
	{OptEnvRegex, func(o *Options, opt, val string) *Error { return parseRegex(&o.EnvRegex, opt, val) }},
}

var dockerOptions = []string{
	DockerMode, DockerMaxBufferSize, DockerCacheDisabled,
	DockerCacheMaxSize, DockerCacheMaxFile, DockerCacheCompress,
}

// validNames is the sorted list of s3logs option names, for messages.
var validNames = func() string {
	names := make([]string, 0, len(table))
	for _, t := range table {
		names = append(names, t.name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}()

// hints point users of other drivers to the s3logs equivalent.
var hints = map[string]string{
	"max-size": "segment-size",
	"max-file": "segment-size and segment-age",
	"compress": "compression-level",
	"tag":      "prefix",
}

// Parse validates a log-opt map and fills in defaults. On failure it returns
// every problem found, each a *Error wrapping ErrUnknownOption,
// ErrInvalidValue or ErrMissingOption, joined with errors.Join in a stable
// order (see the package documentation), and a nil *Options. An empty value
// means the option's default, except for bucket, which is required.
func Parse(cfg map[string]string) (*Options, error) {
	o := &Options{
		PrefixTemplate:   keys.DefaultPrefix,
		SegmentSize:      DefaultSegmentSize,
		SegmentAge:       DefaultSegmentAge,
		CompressionLevel: zstd.SpeedFastest,
	}
	var errs []error

	var unknown []string
	for k := range cfg {
		if !known(k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		want := validNames
		if h, ok := hints[k]; ok {
			want += " (for " + k + ", see " + h + ")"
		} else if looksLikeCredential(k) {
			want += " (" + credentialsHint + ")"
		}
		// The value is not kept: it may be a credential.
		errs = append(errs, &Error{Option: k, Want: want, Err: ErrUnknownOption})
	}

	for _, t := range table {
		val, ok := cfg[t.name]
		if !ok || (val == "" && t.name != OptBucket) {
			continue
		}
		if err := t.parse(o, t.name, val); err != nil {
			errs = append(errs, err)
		}
	}

	if cfg[OptBucket] == "" {
		errs = append(errs, &Error{Option: OptBucket, Want: "--log-opt bucket=NAME, " + wantBucket, Err: ErrMissingOption})
	}
	if cfg[OptForcePathStyle] == "" {
		o.ForcePathStyle = o.Endpoint != ""
	}
	if cfg[OptPrefix] == "" {
		p, err := keys.ParsePrefix(keys.DefaultPrefix)
		if err != nil {
			errs = append(errs, invalid(OptPrefix, keys.DefaultPrefix, wantPrefix, err))
		}
		o.Prefix = p
	}
	// A key id without sse=aws:kms is refused, unless sse itself was bad
	// (already reported).
	sseBad := cfg[OptSSE] != "" && o.SSE == ""
	if o.SSEKMSKeyID != "" && o.SSE != SSEKMS && !sseBad {
		errs = append(errs, invalid(OptSSEKMSKeyID, o.SSEKMSKeyID, wantKMSWithSSE, nil))
	}

	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return o, nil
}

// looksLikeCredential reports whether an unknown option's name suggests a
// credential (aws-secret-access-key, password, token ...).
func looksLikeCredential(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"secret", "password", "passwd", "token", "credential", "access-key", "access_key", "accesskey", "aws_"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func known(name string) bool {
	for _, t := range table {
		if t.name == name {
			return true
		}
	}
	return slices.Contains(dockerOptions, name)
}

func parseBucket(o *Options, opt, val string) *Error {
	if val == "" {
		return nil // reported as missing
	}
	if !validBucket(val) {
		return invalid(opt, val, wantBucket, nil)
	}
	o.Bucket = val
	return nil
}

// validBucket applies the S3 general-purpose bucket naming rules that can
// be checked offline.
func validBucket(s string) bool {
	if len(s) < 3 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(('a' <= c && c <= 'z') || isDigit(c) || c == '.' || c == '-') {
			return false
		}
	}
	if !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) || strings.Contains(s, "..") {
		return false
	}
	if ip := net.ParseIP(s); ip != nil {
		return false
	}
	return true
}

func isAlnum(c byte) bool { return ('a' <= c && c <= 'z') || isDigit(c) }

func parseRegion(o *Options, opt, val string) *Error {
	ok := len(val) <= 63 && val[0] != '-' && val[len(val)-1] != '-'
	for i := 0; ok && i < len(val); i++ {
		c := val[i] | 0x20
		ok = ('a' <= c && c <= 'z') || isDigit(val[i]) || val[i] == '-'
	}
	if !ok {
		return invalid(opt, val, wantRegion, nil)
	}
	o.Region = val
	return nil
}

// parseEndpoint accepts http(s)://host[:port] with an optional "/". Every
// message shows the value through redactEndpoint, so a password in it is
// never repeated, and the cause from net/url (which quotes parts of the
// value) only when redacting changed nothing.
func parseEndpoint(o *Options, opt, val string) *Error {
	shown := redactEndpoint(val)
	if hasUserinfo(val) {
		return invalid(opt, shown, wantEndpoint+"; "+credentialsHint, nil)
	}
	u, err := url.Parse(val)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the message of a *url.Error repeats the value
		}
		if shown != val {
			err = nil
		}
		return invalid(opt, shown, wantEndpoint, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return invalid(opt, shown, wantEndpoint, nil)
	case u.Hostname() == "":
		return invalid(opt, shown, wantEndpoint, nil)
	case u.User != nil: // unreachable: hasUserinfo
		return invalid(opt, shown, wantEndpoint+"; "+credentialsHint, nil)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(val, "#") ||
		(u.Path != "" && u.Path != "/") || u.Opaque != "":
		return invalid(opt, shown, wantEndpoint, nil)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalid(opt, shown, wantEndpoint, nil)
		}
	}
	o.Endpoint = val
	return nil
}

func parseForcePathStyle(o *Options, opt, val string) *Error {
	b, err := strconv.ParseBool(val)
	if err != nil {
		return invalid(opt, val, wantBool, nil)
	}
	o.ForcePathStyle = b
	return nil
}

func parsePrefix(o *Options, opt, val string) *Error {
	p, err := keys.ParsePrefix(val)
	if err != nil {
		return invalid(opt, val, wantPrefix, err)
	}
	o.PrefixTemplate = p.String()
	o.Prefix = p
	return nil
}

func parseSegmentSize(o *Options, opt, val string) *Error {
	n, err := parseSize(val)
	if err != nil || n < MinSegmentSize || n > MaxSegmentSize {
		return invalid(opt, val, wantSize, nil)
	}
	o.SegmentSize = n
	return nil
}

func parseSegmentAge(o *Options, opt, val string) *Error {
	d, err := time.ParseDuration(val)
	if err != nil || d < MinSegmentAge || d > MaxSegmentAge {
		return invalid(opt, val, wantAge, nil)
	}
	o.SegmentAge = d
	return nil
}

func parseCompressionLevel(o *Options, opt, val string) *Error {
	l, ok := compressionLevels[strings.ToLower(val)]
	if !ok {
		return invalid(opt, val, wantCompression, nil)
	}
	o.CompressionLevel = l
	return nil
}

func parseStorageClass(o *Options, opt, val string) *Error {
	up := strings.ToUpper(val)
	if !slices.Contains(storageClasses, up) {
		return invalid(opt, val, wantStorageClass, nil)
	}
	o.StorageClass = up
	return nil
}

func parseSSE(o *Options, opt, val string) *Error {
	switch {
	case strings.EqualFold(val, SSEAES256):
		o.SSE = SSEAES256
	case strings.EqualFold(val, SSEKMS):
		o.SSE = SSEKMS
	default:
		return invalid(opt, val, wantSSE, nil)
	}
	return nil
}

func parseSSEKMSKeyID(o *Options, opt, val string) *Error {
	if len(val) > 2048 {
		return invalid(opt, val, wantKMSKeyID, nil)
	}
	for _, r := range val {
		if r <= ' ' || r == 0x7f || r == '\uFFFD' {
			return invalid(opt, val, wantKMSKeyID, nil)
		}
	}
	o.SSEKMSKeyID = val
	return nil
}

func parseRegex(dst **regexp.Regexp, opt, val string) *Error {
	re, err := regexp.Compile(val)
	if err != nil {
		return invalid(opt, val, wantRegex, err)
	}
	*dst = re
	return nil
}

// splitList splits a comma-separated list exactly as Docker does: no
// trimming, empty names kept.
func splitList(val string) []string { return strings.Split(val, ",") }
