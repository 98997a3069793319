package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/s3logs/s3logs/segment"
)

func TestLoadConfig(t *testing.T) {
	fs := func(string) (int64, error) { return 100 << 30, nil }
	cases := []struct {
		env     map[string]string
		limit   int64
		policy  segment.Policy
		backoff time.Duration
		err     string
	}{
		{env: nil, limit: 25 << 30, policy: segment.PolicyDropOldest, backoff: 5 * time.Minute},
		{env: map[string]string{"SPOOL_LIMIT": "10g", "SPOOL_POLICY": "block", "UPLOAD_BACKOFF_MAX": "30s"}, limit: 10 << 30, policy: segment.PolicyBlock, backoff: 30 * time.Second},
		{env: map[string]string{"SPOOL_LIMIT": "50%"}, limit: 50 << 30, policy: segment.PolicyDropOldest, backoff: 5 * time.Minute},
		{env: map[string]string{"SPOOL_LIMIT": "0%"}, err: "SPOOL_LIMIT"},
		{env: map[string]string{"SPOOL_LIMIT": "101%"}, err: "SPOOL_LIMIT"},
		{env: map[string]string{"SPOOL_LIMIT": "10XB"}, err: "SPOOL_LIMIT"},
		{env: map[string]string{"SPOOL_LIMIT": "100k"}, err: "at least 1m"},
		{env: map[string]string{"SPOOL_POLICY": "drop"}, err: "SPOOL_POLICY"},
		{env: map[string]string{"UPLOAD_BACKOFF_MAX": "5"}, err: "UPLOAD_BACKOFF_MAX"},
		{env: map[string]string{"UPLOAD_BACKOFF_MAX": "10ms"}, err: "UPLOAD_BACKOFF_MAX"},
		{env: map[string]string{"LOG_LEVEL": "loud"}, err: "LOG_LEVEL"},
		{env: map[string]string{"JOURNAL_LIMIT": "1x"}, err: "JOURNAL_LIMIT"},
		{env: map[string]string{"JOURNAL_LIMIT": "100k"}, err: "JOURNAL_LIMIT"},
	}
	for _, c := range cases {
		cfg, err := loadConfig(func(k string) string { return c.env[k] }, fs)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: err = %v, want one naming %s", c.env, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.env, err)
			continue
		}
		if cfg.spoolLimit != c.limit || cfg.policy != c.policy || cfg.backoffMax != c.backoff {
			t.Errorf("%v: got limit %d policy %s backoff %v", c.env, cfg.spoolLimit, cfg.policy, cfg.backoffMax)
		}
	}
	for v, want := range map[string]int64{"": 256 << 20, "2g": 2 << 30, "0": -1} {
		cfg, err := loadConfig(func(k string) string { return map[string]string{"JOURNAL_LIMIT": v}[k] }, fs)
		if err != nil || cfg.journalLimit != want {
			t.Errorf("JOURNAL_LIMIT=%q: journalLimit %d, %v; want %d", v, cfg.journalLimit, err, want)
		}
	}
	_, err := loadConfig(func(k string) string { return map[string]string{"SPOOL_LIMIT": "10%"}[k] },
		func(string) (int64, error) { return 0, errors.New("no fs") })
	if err == nil {
		t.Error("a failing filesystem size was ignored")
	}
}

func TestLoadConfigAllowedEndpoints(t *testing.T) {
	fs := func(string) (int64, error) { return 100 << 30, nil }
	cases := []struct {
		val    string
		policy string // String() of the parsed policy
		err    []string
	}{
		{val: "", policy: ""},
		{val: "   ", policy: ""},
		{val: "none", policy: "none"},
		{val: "None", policy: "none"},
		{val: " https://s3.example.com , minio:9000 ", policy: "https://s3.example.com,minio:9000"},
		{val: "*.s3.example.com,[::1]:9000", policy: "*.s3.example.com,[::1]:9000"},
		{val: "none,minio", err: []string{`ALLOWED_ENDPOINTS="none,minio": none cannot be combined`}},
		{val: "ftp://host", err: []string{`ALLOWED_ENDPOINTS entry "ftp://host" is invalid: want empty (any endpoint), none`}},
		{val: "http://AKIA:secret@host", err: []string{`ALLOWED_ENDPOINTS entry "http://xxxxx@host" is invalid`}},
		{val: "host:0,host/x", err: []string{`entry "host:0"`, `entry "host/x"`}},
	}
	for _, c := range cases {
		cfg, err := loadConfig(func(k string) string { return map[string]string{"ALLOWED_ENDPOINTS": c.val}[k] }, fs)
		if c.err == nil {
			if err != nil {
				t.Errorf("%q: %v", c.val, err)
			} else if got := cfg.allowedEndpoints.String(); got != c.policy {
				t.Errorf("%q: policy %q, want %q", c.val, got, c.policy)
			}
			continue
		}
		if err == nil {
			t.Errorf("%q: accepted", c.val)
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(c.err) {
			t.Errorf("%q: %d error lines, want %d: %v", c.val, len(lines), len(c.err), err)
			continue
		}
		for i, l := range lines {
			if !strings.HasPrefix(l, "ALLOWED_ENDPOINTS") || !strings.Contains(l, c.err[i]) || strings.Contains(l, "secret") {
				t.Errorf("%q: error line %q, want one naming ALLOWED_ENDPOINTS with %q", c.val, l, c.err[i])
			}
		}
	}
	// The default allows any endpoint; none allows only AWS.
	cfg, err := loadConfig(func(string) string { return "" }, fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.allowedEndpoints.CheckEndpoint("http://10.1.2.3:9000"); err != nil {
		t.Errorf("default policy refused an endpoint: %v", err)
	}
	cfg, err = loadConfig(func(k string) string { return map[string]string{"ALLOWED_ENDPOINTS": "none"}[k] }, fs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.allowedEndpoints.CheckEndpoint("http://10.1.2.3:9000") == nil || cfg.allowedEndpoints.CheckEndpoint("") != nil {
		t.Error("none does not mean AWS only")
	}
}

func TestLoadConfigMetrics(t *testing.T) {
	fs := func(string) (int64, error) { return 100 << 30, nil }
	cases := []struct {
		env   map[string]string
		addr  string
		pprof bool
		err   string
	}{
		{env: nil},
		{env: map[string]string{"METRICS_ADDR": "127.0.0.1:9465"}, addr: "127.0.0.1:9465"},
		{env: map[string]string{"METRICS_ADDR": "[::1]:9465", "PPROF": "true"}, addr: "[::1]:9465", pprof: true},
		{env: map[string]string{"METRICS_ADDR": ":9465", "PPROF": "false"}, addr: ":9465"},
		{env: map[string]string{"METRICS_ADDR": "127.0.0.1"}, err: "METRICS_ADDR"},
		{env: map[string]string{"METRICS_ADDR": "127.0.0.1:0"}, err: "METRICS_ADDR"},
		{env: map[string]string{"METRICS_ADDR": "127.0.0.1:http"}, err: "METRICS_ADDR"},
		{env: map[string]string{"METRICS_ADDR": "127.0.0.1:70000"}, err: "METRICS_ADDR"},
		{env: map[string]string{"METRICS_ADDR": "127.0.0.1:9465", "PPROF": "yes"}, err: "PPROF"},
		{env: map[string]string{"PPROF": "true"}, err: "PPROF=true needs METRICS_ADDR"},
	}
	for _, c := range cases {
		cfg, err := loadConfig(func(k string) string { return c.env[k] }, fs)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: err = %v, want one naming %s", c.env, err, c.err)
			}
			continue
		}
		if err != nil || cfg.metricsAddr != c.addr || cfg.pprof != c.pprof {
			t.Errorf("%v: addr %q pprof %v err %v, want %q %v", c.env, cfg.metricsAddr, cfg.pprof, err, c.addr, c.pprof)
		}
	}
}
