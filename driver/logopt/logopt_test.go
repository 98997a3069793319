package logopt

import (
	"errors"
	"maps"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/s3logs/s3logs/keys"
)

// with returns a valid base map plus kv pairs ("" values allowed).
func with(kv ...string) map[string]string {
	m := map[string]string{OptBucket: "logs"}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestParseDefaults(t *testing.T) {
	o, err := Parse(map[string]string{"bucket": "my-logs"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Bucket != "my-logs" || o.Region != "" || o.Endpoint != "" || o.ForcePathStyle {
		t.Errorf("S3 settings: %+v", o)
	}
	if o.PrefixTemplate != keys.DefaultPrefix || o.Prefix == nil || o.Prefix.String() != keys.DefaultPrefix {
		t.Errorf("prefix: %q %v", o.PrefixTemplate, o.Prefix)
	}
	if o.SegmentSize != 64<<20 || o.SegmentAge != 5*time.Minute || o.CompressionLevel != zstd.SpeedFastest {
		t.Errorf("segment: %d %v %v", o.SegmentSize, o.SegmentAge, o.CompressionLevel)
	}
	if o.StorageClass != "" || o.SSE != "" || o.SSEKMSKeyID != "" {
		t.Errorf("storage: %+v", o)
	}
	if o.Labels != nil || o.LabelsRegex != nil || o.Env != nil || o.EnvRegex != nil {
		t.Errorf("attrs: %+v", o)
	}
}

// Empty values mean the default (bucket aside).
func TestParseEmptyValuesAreDefaults(t *testing.T) {
	cfg := with()
	for _, tt := range table {
		if tt.name != OptBucket {
			cfg[tt.name] = ""
		}
	}
	o, err := Parse(cfg)
	if err != nil {
		t.Fatal(err)
	}
	def, err := Parse(with())
	if err != nil {
		t.Fatal(err)
	}
	if o.PrefixTemplate != def.PrefixTemplate || o.SegmentSize != def.SegmentSize ||
		o.SegmentAge != def.SegmentAge || o.CompressionLevel != def.CompressionLevel ||
		o.ForcePathStyle != def.ForcePathStyle || o.Labels != nil || o.EnvRegex != nil {
		t.Errorf("empty values: %+v, defaults: %+v", o, def)
	}
}

func TestParseGood(t *testing.T) {
	tests := []struct {
		opt, val string
		check    func(*Options) bool
	}{
		{OptBucket, "abc", func(o *Options) bool { return o.Bucket == "abc" }},
		{OptBucket, "my.logs-2026", func(o *Options) bool { return o.Bucket == "my.logs-2026" }},
		{OptBucket, strings.Repeat("a", 63), func(o *Options) bool { return len(o.Bucket) == 63 }},
		{OptBucket, "1.2.3", func(o *Options) bool { return o.Bucket == "1.2.3" }},
		{OptRegion, "us-east-1", func(o *Options) bool { return o.Region == "us-east-1" }},
		{OptRegion, "EU-West-3", func(o *Options) bool { return o.Region == "EU-West-3" }},
		{OptEndpoint, "http://127.0.0.1:9000", func(o *Options) bool { return o.Endpoint == "http://127.0.0.1:9000" && o.ForcePathStyle }},
		{OptEndpoint, "https://s3.example.com/", func(o *Options) bool { return o.Endpoint == "https://s3.example.com/" && o.ForcePathStyle }},
		{OptEndpoint, "http://[::1]:9000", func(o *Options) bool { return o.Endpoint == "http://[::1]:9000" }},
		{OptEndpoint, "HTTP://minio:9000", func(o *Options) bool { return o.Endpoint == "HTTP://minio:9000" }},
		{OptForcePathStyle, "true", func(o *Options) bool { return o.ForcePathStyle }},
		{OptForcePathStyle, "false", func(o *Options) bool { return !o.ForcePathStyle }},
		{OptForcePathStyle, "1", func(o *Options) bool { return o.ForcePathStyle }},
		{OptPrefix, "{{.ImageName}}/{{.ID}}/", func(o *Options) bool {
			return o.PrefixTemplate == "{{.ImageName}}/{{.ID}}/" && o.Prefix.String() == o.PrefixTemplate
		}},
		{OptSegmentSize, "64k", func(o *Options) bool { return o.SegmentSize == 64<<10 }},
		{OptSegmentSize, "65536", func(o *Options) bool { return o.SegmentSize == 65536 }},
		{OptSegmentSize, "512k", func(o *Options) bool { return o.SegmentSize == 512<<10 }},
		{OptSegmentSize, "64m", func(o *Options) bool { return o.SegmentSize == 64<<20 }},
		{OptSegmentSize, "64MB", func(o *Options) bool { return o.SegmentSize == 64<<20 }},
		{OptSegmentSize, "64MiB", func(o *Options) bool { return o.SegmentSize == 64<<20 }},
		{OptSegmentSize, "1g", func(o *Options) bool { return o.SegmentSize == 1<<30 }},
		{OptSegmentSize, "1.5g", func(o *Options) bool { return o.SegmentSize == 3<<29 }},
		{OptSegmentSize, "5g", func(o *Options) bool { return o.SegmentSize == 5<<30 }},
		{OptSegmentSize, "100 kb", func(o *Options) bool { return o.SegmentSize == 100<<10 }},
		{OptSegmentAge, "1s", func(o *Options) bool { return o.SegmentAge == time.Second }},
		{OptSegmentAge, "90s", func(o *Options) bool { return o.SegmentAge == 90*time.Second }},
		{OptSegmentAge, "1h30m", func(o *Options) bool { return o.SegmentAge == 90*time.Minute }},
		{OptSegmentAge, "24h", func(o *Options) bool { return o.SegmentAge == 24*time.Hour }},
		{OptCompressionLevel, "fastest", func(o *Options) bool { return o.CompressionLevel == zstd.SpeedFastest }},
		{OptCompressionLevel, "default", func(o *Options) bool { return o.CompressionLevel == zstd.SpeedDefault }},
		{OptCompressionLevel, "better", func(o *Options) bool { return o.CompressionLevel == zstd.SpeedBetterCompression }},
		{OptCompressionLevel, "BEST", func(o *Options) bool { return o.CompressionLevel == zstd.SpeedBestCompression }},
		{OptSSE, "AES256", func(o *Options) bool { return o.SSE == SSEAES256 }},
		{OptSSE, "aes256", func(o *Options) bool { return o.SSE == SSEAES256 }},
		{OptSSE, "aws:kms", func(o *Options) bool { return o.SSE == SSEKMS && o.SSEKMSKeyID == "" }},
		{OptLabels, "a,b", func(o *Options) bool { return reflect.DeepEqual(o.Labels, []string{"a", "b"}) }},
		{OptLabels, "a, b,", func(o *Options) bool { return reflect.DeepEqual(o.Labels, []string{"a", " b", ""}) }},
		{OptLabelsRegex, "^com\\.example\\.", func(o *Options) bool { return o.LabelsRegex.String() == "^com\\.example\\." }},
		{OptEnv, "A,B", func(o *Options) bool { return reflect.DeepEqual(o.Env, []string{"A", "B"}) }},
		{OptEnvRegex, "^APP_", func(o *Options) bool { return o.EnvRegex.MatchString("APP_X") }},
	}
	for _, sc := range []string{"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
		"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR", "OUTPOSTS", "EXPRESS_ONEZONE", "SNOW"} {
		want := sc
		tests = append(tests, struct {
			opt, val string
			check    func(*Options) bool
		}{OptStorageClass, strings.ToLower(sc), func(o *Options) bool { return o.StorageClass == want }})
	}
	for _, tt := range tests {
		t.Run(tt.opt+"="+tt.val, func(t *testing.T) {
			o, err := Parse(with(tt.opt, tt.val))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.check(o) {
				t.Errorf("unexpected result: %+v", o)
			}
		})
	}
}

func TestParseCombinations(t *testing.T) {
	o, err := Parse(with(OptEndpoint, "http://127.0.0.1:9000", OptForcePathStyle, "false"))
	if err != nil {
		t.Fatal(err)
	}
	if o.ForcePathStyle {
		t.Error("force-path-style=false ignored when endpoint is set")
	}
	o, err = Parse(with(OptForcePathStyle, "true"))
	if err != nil {
		t.Fatal(err)
	}
	if !o.ForcePathStyle {
		t.Error("force-path-style=true ignored without endpoint")
	}
	o, err = Parse(with(OptSSE, "aws:kms", OptSSEKMSKeyID, "arn:aws:kms:us-east-1:111122223333:key/1234abcd"))
	if err != nil {
		t.Fatal(err)
	}
	if o.SSE != SSEKMS || o.SSEKMSKeyID != "arn:aws:kms:us-east-1:111122223333:key/1234abcd" {
		t.Errorf("kms: %+v", o)
	}
}

func TestParseDockerOptionsIgnored(t *testing.T) {
	cfg := with(
		"mode", "non-blocking", "max-buffer-size", "4m", "cache-disabled", "false",
		"cache-max-size", "20m", "cache-max-file", "5", "cache-compress", "true",
	)
	o, err := Parse(cfg)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	def, _ := Parse(with())
	if o.SegmentSize != def.SegmentSize || o.CompressionLevel != def.CompressionLevel {
		t.Errorf("Docker's options changed s3logs settings: %+v", o)
	}
}

// errorsOf unpacks an errors.Join result into its *Error items.
func errorsOf(t *testing.T, err error) []*Error {
	t.Helper()
	if err == nil {
		t.Fatal("Parse succeeded, want an error")
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]*Error, 0, len(list))
	for _, e := range list {
		var oe *Error
		if !errors.As(e, &oe) {
			t.Fatalf("%v is not an *Error", e)
		}
		out = append(out, oe)
	}
	return out
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		opt, val string
		msg      string // exact message
	}{
		{OptBucket, "ab", `log-opt bucket="ab" is invalid: want ` + wantBucket},
		{OptBucket, strings.Repeat("a", 64), `log-opt bucket="` + strings.Repeat("a", 64) + `" is invalid: want ` + wantBucket},
		{OptBucket, "My-Logs", `log-opt bucket="My-Logs" is invalid: want ` + wantBucket},
		{OptBucket, "my_logs", ""},
		{OptBucket, "-logs", ""},
		{OptBucket, "logs.", ""},
		{OptBucket, "my..logs", ""},
		{OptBucket, "192.168.1.1", ""},
		{OptBucket, "s3://logs", ""},
		{OptRegion, "us east 1", `log-opt region="us east 1" is invalid: want ` + wantRegion},
		{OptRegion, "-us", ""},
		{OptRegion, "us.east", ""},
		{OptRegion, strings.Repeat("a", 64), ""},
		{OptEndpoint, "127.0.0.1:9000", `log-opt endpoint="127.0.0.1:9000" is invalid: want ` + wantEndpoint + ` (first path segment in URL cannot contain colon)`},
		{OptEndpoint, "localhost:9000", `log-opt endpoint="localhost:9000" is invalid: want ` + wantEndpoint},
		{OptEndpoint, "ftp://host", ""},
		{OptEndpoint, "http://", ""},
		{OptEndpoint, "http://:9000", ""},
		{OptEndpoint, "http://host:99999", ""},
		{OptEndpoint, "http://host/bucket", ""},
		{OptEndpoint, "http://host?x=1", ""},
		{OptEndpoint, "http://host?", ""},
		{OptEndpoint, "http://host#frag", ""},
		{OptEndpoint, "http:host", ""},
		{OptEndpoint, "http://[::1", ""},
		{OptEndpoint, "http://user:secret@host:9000", `log-opt endpoint="http://xxxxx@host:9000" is invalid: want ` + wantEndpoint +
			`; credentials do not belong in log-opts (anyone can read them with docker inspect): set them as plugin settings (docker plugin set)`},
		{OptForcePathStyle, "yes", `log-opt force-path-style="yes" is invalid: want true or false`},
		{OptPrefix, "{{.Foo}}/", `log-opt prefix="{{.Foo}}/" is invalid: want ` + wantPrefix +
			` (keys: bad prefix template: template: prefix:1:2: executing "prefix" at <.Foo>: can't evaluate field Foo in type keys.fields)`},
		{OptPrefix, "{{.Name", ""},
		{OptPrefix, `{{define "x"}}{{template "x"}}{{end}}{{template "x"}}`, `log-opt prefix="{{define \"x\"}}{{template \"x\"}}{{end}}{{template \"x\"}}" is invalid: want ` + wantPrefix +
			` (keys: bad prefix template: {{define}} and {{block}} are not allowed in a prefix)`},
		{OptPrefix, `{{template "prefix"}}`, ""},
		{OptPrefix, `{{block "b" .}}x{{end}}`, ""},
		{OptPrefix, `{{range 1000000000}}{{end}}`, ""},
		{OptPrefix, `{{with .Name}}{{.}}{{end}}`, ""},
		{OptPrefix, `{{$a := .Name}}{{$a}}`, ""},
		{OptPrefix, `{{js .Name}}`, ""},
		{OptPrefix, `{{printf "%0999999d" 1}}`, ""},
		{OptPrefix, strings.Repeat("x", keys.MaxPrefixTemplateLen+1), ""},
		{OptSegmentSize, "10XB", `log-opt segment-size="10XB" is invalid: want a size such as 512k, 64m or 1g (64k to 5g)`},
		{OptSegmentSize, "63k", ""},
		{OptSegmentSize, "65535", ""},
		{OptSegmentSize, "5121m", ""},
		{OptSegmentSize, "6g", ""},
		{OptSegmentSize, "1t", ""},
		{OptSegmentSize, "-64m", ""},
		{OptSegmentSize, "64  m", ""},
		{OptSegmentSize, " 64m", ""},
		{OptSegmentSize, "64mm", ""},
		{OptSegmentSize, "0x10000", ""},
		{OptSegmentAge, "5", `log-opt segment-age="5" is invalid: want a duration such as 30s, 5m or 1h (1s to 24h)`},
		{OptSegmentAge, "999ms", ""},
		{OptSegmentAge, "25h", ""},
		{OptSegmentAge, "-1m", ""},
		{OptSegmentAge, "5 minutes", ""},
		{OptCompressionLevel, "9", `log-opt compression-level="9" is invalid: want fastest, default, better or best`},
		{OptCompressionLevel, "speed", ""},
		{OptStorageClass, "COLD", `log-opt storage-class="COLD" is invalid: want one of STANDARD, REDUCED_REDUNDANCY, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER, DEEP_ARCHIVE, OUTPOSTS, GLACIER_IR, SNOW, EXPRESS_ONEZONE`},
		{OptSSE, "kms", `log-opt sse="kms" is invalid: want AES256 or aws:kms`},
		{OptSSE, "aws:kms:dsse", ""},
		{OptSSEKMSKeyID, "key", `log-opt sse-kms-key-id="key" is invalid: want sse=aws:kms together with sse-kms-key-id`},
		{OptSSEKMSKeyID, "a key", `log-opt sse-kms-key-id="a key" is invalid: want ` + wantKMSKeyID},
		{OptLabelsRegex, "(", `log-opt labels-regex="(" is invalid: want a Go regular expression (RE2 syntax) (error parsing regexp: missing closing ): ` + "`(`)"},
		{OptEnvRegex, "a**", ""},
		{OptEnvRegex, "(?<name>x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.opt+"="+tt.val, func(t *testing.T) {
			_, err := Parse(with(tt.opt, tt.val))
			errs := errorsOf(t, err)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1: %v", len(errs), err)
			}
			e := errs[0]
			if e.Option != tt.opt || !errors.Is(err, ErrInvalidValue) {
				t.Errorf("error %v: option %q, want %q wrapping ErrInvalidValue", err, e.Option, tt.opt)
			}
			if errors.Is(err, ErrUnknownOption) || errors.Is(err, ErrMissingOption) {
				t.Errorf("error %v wraps the wrong sentinel", err)
			}
			msg := err.Error()
			if tt.msg != "" && msg != tt.msg {
				t.Errorf("message:\n got %s\nwant %s", msg, tt.msg)
			}
			if strings.Contains(msg, "\n") || !strings.Contains(msg, "log-opt "+tt.opt+"=") {
				t.Errorf("message %q is not one line naming the option", msg)
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("message %q repeats a password", msg)
			}
		})
	}
}

func TestWantPrefixBounds(t *testing.T) {
	if !strings.Contains(wantPrefix, "at most "+strconv.Itoa(keys.MaxPrefixTemplateLen)+" bytes") {
		t.Errorf("wantPrefix does not state keys.MaxPrefixTemplateLen: %s", wantPrefix)
	}
}

func TestParseCauseIsWrapped(t *testing.T) {
	_, err := Parse(with(OptPrefix, "{{.Foo}}"))
	if !errors.Is(err, keys.ErrBadPrefix) || !errors.Is(err, ErrInvalidValue) {
		t.Errorf("prefix error %v does not wrap keys.ErrBadPrefix and ErrInvalidValue", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Value != "{{.Foo}}" || e.Want != wantPrefix {
		t.Errorf("errors.As: %#v", e)
	}
}

func TestParseMissingBucket(t *testing.T) {
	for _, cfg := range []map[string]string{{}, nil, {OptBucket: ""}, {OptRegion: "us-east-1"}} {
		_, err := Parse(cfg)
		errs := errorsOf(t, err)
		if len(errs) != 1 || !errors.Is(err, ErrMissingOption) || errs[0].Option != OptBucket {
			t.Fatalf("Parse(%v) = %v", cfg, err)
		}
		want := "log-opt bucket is required: want --log-opt bucket=NAME, " + wantBucket
		if err.Error() != want {
			t.Errorf("message:\n got %s\nwant %s", err, want)
		}
	}
}

func TestParseUnknown(t *testing.T) {
	_, err := Parse(with("bukcet", "x"))
	errs := errorsOf(t, err)
	if len(errs) != 1 || !errors.Is(err, ErrUnknownOption) || errs[0].Option != "bukcet" {
		t.Fatalf("Parse = %v", err)
	}
	want := `unknown log-opt "bukcet" for the s3logs driver: valid options are bucket, compression-level, endpoint, env, env-regex, force-path-style, labels, labels-regex, prefix, region, segment-age, segment-size, sse, sse-kms-key-id, storage-class`
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}

	_, err = Parse(with("max-size", "10m"))
	if !errors.Is(err, ErrUnknownOption) || !strings.HasSuffix(err.Error(), "(for max-size, see segment-size)") {
		t.Errorf("max-size: %v", err)
	}
	_, err = Parse(with("aws-secret-access-key", "s3cr3t-value"))
	var e *Error
	if !errors.As(err, &e) || e.Value != "" || strings.Contains(err.Error(), "s3cr3t") ||
		!strings.HasSuffix(err.Error(), "(credentials do not belong in log-opts (anyone can read them with docker inspect): set them as plugin settings (docker plugin set))") {
		t.Errorf("credential-like unknown option: %v (value %q)", err, e.Value)
	}
	_, err = Parse(with("evil\noption", "x"))
	if err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("a newline in an option name broke the line: %q", err)
	}
}

func TestParseManyProblemsStableOrder(t *testing.T) {
	cfg := map[string]string{
		"zzz":            "1",
		"aaa":            "2",
		OptSegmentAge:    "0s",
		OptSegmentSize:   "1",
		OptSSEKMSKeyID:   "k",
		OptRegion:        "bad region",
		"cache-disabled": "true",
	}
	wantOpts := []string{"aaa", "zzz", OptRegion, OptSegmentSize, OptSegmentAge, OptBucket, OptSSEKMSKeyID}
	var first string
	for i := 0; i < 20; i++ {
		_, err := Parse(maps.Clone(cfg))
		errs := errorsOf(t, err)
		var got []string
		for _, e := range errs {
			got = append(got, e.Option)
		}
		if !reflect.DeepEqual(got, wantOpts) {
			t.Fatalf("options %v, want %v", got, wantOpts)
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("message changed between runs")
		}
		for _, line := range strings.Split(err.Error(), "\n") {
			if line == "" {
				t.Errorf("empty line in %q", err)
			}
		}
	}
	for _, s := range []error{ErrUnknownOption, ErrInvalidValue, ErrMissingOption} {
		_, err := Parse(cfg)
		if !errors.Is(err, s) {
			t.Errorf("joined error does not wrap %v", s)
		}
	}
	// A bad sse is reported once, without a second complaint about the key id.
	_, err := Parse(with(OptSSE, "nope", OptSSEKMSKeyID, "k"))
	if errs := errorsOf(t, err); len(errs) != 1 || errs[0].Option != OptSSE {
		t.Errorf("bad sse with key id: %v", err)
	}
	_, err = Parse(with(OptSSE, "AES256", OptSSEKMSKeyID, "k"))
	if errs := errorsOf(t, err); len(errs) != 1 || errs[0].Option != OptSSEKMSKeyID {
		t.Errorf("AES256 with key id: %v", err)
	}
}

func TestErrorLongValue(t *testing.T) {
	long := strings.Repeat("é", 200)
	_, err := Parse(with(OptSegmentSize, long))
	msg := err.Error()
	if len(msg) > 300 || !strings.Contains(msg, "... (400 bytes)") {
		t.Errorf("long value not shortened: %d bytes: %s", len(msg), msg)
	}
	if strings.Contains(msg, "\\x") {
		t.Errorf("value cut inside a UTF-8 sequence: %s", msg)
	}
	_, err = Parse(with(OptSegmentSize, "1\n2"))
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `"1\n2"`) {
		t.Errorf("control characters not quoted: %q", err)
	}
}

func TestAttrs(t *testing.T) {
	labels := map[string]string{
		"com.example.team": "infra",
		"com.example.app":  "web",
		"version":          "1.2",
		"":                 "empty-name",
		"PATH":             "label-path",
	}
	env := []string{
		"PATH=/usr/bin",
		"APP_MODE=prod",
		"APP_DEBUG=",
		"NOEQUALS",
		"DUP=first",
		"DUP=second",
		"EQ=a=b",
		"=novalue",
	}
	tests := []struct {
		name string
		cfg  map[string]string
		want map[string]string
	}{
		{"none", nil, map[string]string{}},
		{"empty values", map[string]string{OptLabels: "", OptEnv: "", OptLabelsRegex: "", OptEnvRegex: ""}, map[string]string{}},
		{"labels", map[string]string{OptLabels: "version,com.example.app,missing"},
			map[string]string{"version": "1.2", "com.example.app": "web"}},
		{"labels verbatim, no trimming", map[string]string{OptLabels: "version, com.example.app"},
			map[string]string{"version": "1.2"}},
		{"empty label name from a trailing comma", map[string]string{OptLabels: "version,"},
			map[string]string{"version": "1.2", "": "empty-name"}},
		{"labels-regex alone", map[string]string{OptLabelsRegex: `^com\.example\.`},
			map[string]string{"com.example.team": "infra", "com.example.app": "web"}},
		{"labels-regex is unanchored", map[string]string{OptLabelsRegex: "app"},
			map[string]string{"com.example.app": "web"}},
		{"labels and labels-regex", map[string]string{OptLabels: "version", OptLabelsRegex: "team$"},
			map[string]string{"version": "1.2", "com.example.team": "infra"}},
		{"env", map[string]string{OptEnv: "APP_MODE,APP_DEBUG,NOEQUALS,MISSING"},
			map[string]string{"APP_MODE": "prod", "APP_DEBUG": ""}},
		{"env split at first =", map[string]string{OptEnv: "EQ"}, map[string]string{"EQ": "a=b"}},
		{"env later entry wins", map[string]string{OptEnv: "DUP"}, map[string]string{"DUP": "second"}},
		{"env empty name", map[string]string{OptEnv: ","}, map[string]string{"": "novalue"}},
		{"env-regex", map[string]string{OptEnvRegex: "^APP_"},
			map[string]string{"APP_MODE": "prod", "APP_DEBUG": ""}},
		{"env-regex matches everything", map[string]string{OptEnvRegex: "."},
			map[string]string{"PATH": "/usr/bin", "APP_MODE": "prod", "APP_DEBUG": "", "DUP": "second", "EQ": "a=b"}},
		{"env wins over label", map[string]string{OptLabels: "PATH", OptEnv: "PATH"},
			map[string]string{"PATH": "/usr/bin"}},
		{"env-regex wins over labels-regex", map[string]string{OptLabelsRegex: "^PATH$", OptEnvRegex: "^PATH$"},
			map[string]string{"PATH": "/usr/bin"}},
		{"label alone", map[string]string{OptLabels: "PATH", OptEnv: "NOPE"},
			map[string]string{"PATH": "label-path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := with()
			maps.Copy(cfg, tt.cfg)
			o, err := Parse(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := o.Attrs(labels, env)
			if got == nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Attrs = %v, want %v", got, tt.want)
			}
		})
	}
	o, err := Parse(with(OptLabels, "a", OptEnv, "B"))
	if err != nil {
		t.Fatal(err)
	}
	if got := o.Attrs(nil, nil); got == nil || len(got) != 0 {
		t.Errorf("Attrs(nil, nil) = %#v, want an empty map", got)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"32", 32, true},
		{"32b", 32, true},
		{"32B", 32, true},
		{"32k", 32 << 10, true},
		{"32K", 32 << 10, true},
		{"32kb", 32 << 10, true},
		{"32Kb", 32 << 10, true},
		{"32KiB", 32 << 10, true},
		{"32kib", 32 << 10, true},
		{"32ki", 32 << 10, true},
		{"32i", 32, true},
		{"32ib", 32, true},
		{"32Mb", 32 << 20, true},
		{"32Gb", 32 << 30, true},
		{"32Tb", 32 << 40, true},
		{"32Pb", 32 << 50, true},
		{"32 mb", 32 << 20, true},
		{"32 ", 32, true},
		{"32.3", 32, true},
		{"0.5k", 512, true},
		{"1.5g", 3 << 29, true},
		{"0.3k", 307, true},
		{"", 0, false},
		{" ", 0, false},
		{"b", 0, false},
		{"k", 0, false},
		{".5k", 0, false},
		{"1.k", 0, false},
		{"1.2.3k", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"32  mb", 0, false},
		{" 32", 0, false},
		{"32mb ", 0, false},
		{"32bb", 0, false},
		{"32kk", 0, false},
		{"32bi", 0, false},
		{"32e", 0, false},
		{"1e3", 0, false},
		{"0x10", 0, false},
		{"1_000", 0, false},
		{"32\x00", 0, false},
		{"３２", 0, false},
		{"8192p", 0, false},
		{"9223372036854775807", 0, false}, // rounds to 2^63 as a float64
		{"9223372036854774784", 9223372036854774784, true},
		{strings.Repeat("9", 400), 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if ref, ok := refRAMInBytes(tt.in); ok != tt.ok || (ok && ref != got) {
			t.Errorf("reference(%q) = %d, %v; disagrees", tt.in, ref, ok)
		}
	}
}

// refSize is the regular expression of docker/go-units (size.go), used by
// RAMInBytes, which Docker applies to sizes such as max-buffer-size.
var refSize = regexp.MustCompile(`(?i)^(\d+(\.\d+)*) ?([kmgtp])?i?b?$`)

// refRAMInBytes is an independent transcription of go-units' RAMInBytes
// for differential testing; it refuses results of 2^63 or more, where
// RAMInBytes would overflow.
func refRAMInBytes(s string) (int64, bool) {
	m := refSize.FindStringSubmatch(s)
	if len(m) != 4 {
		return 0, false
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	mul := map[string]float64{"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
	if u, ok := mul[strings.ToLower(m[3])]; ok {
		f *= u
	}
	if f >= 1<<63 {
		return 0, false
	}
	return int64(f), true
}
