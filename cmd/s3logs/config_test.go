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
	_, err := loadConfig(func(k string) string { return map[string]string{"SPOOL_LIMIT": "10%"}[k] },
		func(string) (int64, error) { return 0, errors.New("no fs") })
	if err == nil {
		t.Error("a failing filesystem size was ignored")
	}
}
