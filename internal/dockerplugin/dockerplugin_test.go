package dockerplugin

import (
	"encoding/json"
	"slices"
	"testing"
)

// inspected is `docker plugin inspect` output, cut to what Plugin reads.
const inspected = `[{
  "Id": "4f6d",
  "Enabled": true,
  "Config": {"Env": [{"Name": "AWS_REGION", "Value": ""}, {"Name": "LOG_LEVEL", "Value": "info"}]},
  "Settings": {
    "Env": ["AWS_REGION=eu-west-1", "LOG_LEVEL=debug", "SPOOL_LIMIT=25%"],
    "Mounts": [{"Name": "spool", "Source": "/var/lib/s3logs"}]
  }
}]`

func parse(t *testing.T) Plugin {
	t.Helper()
	var all []Plugin
	if err := json.Unmarshal([]byte(inspected), &all); err != nil || len(all) != 1 {
		t.Fatalf("unmarshal: %d, %v", len(all), err)
	}
	return all[0]
}

func TestSaved(t *testing.T) {
	p := parse(t)
	got := p.Saved("LOG_LEVEL", "AWS_SECRET_ACCESS_KEY", "spool.source", "other.source")
	want := []string{"LOG_LEVEL=debug", "spool.source=/var/lib/s3logs"}
	if !slices.Equal(got, want) {
		t.Fatalf("Saved = %q, want %q", got, want)
	}
}

func TestHas(t *testing.T) {
	p := parse(t)
	for _, tc := range []struct {
		settings []string
		want     bool
	}{
		{nil, true},
		{[]string{"LOG_LEVEL=debug", "spool.source=/var/lib/s3logs"}, true},
		{[]string{"LOG_LEVEL=info"}, false},
		{[]string{"spool.source=/tmp"}, false},
		{[]string{"UNSET=1"}, false},
	} {
		if got := p.Has(tc.settings); got != tc.want {
			t.Errorf("Has(%q) = %v, want %v", tc.settings, got, tc.want)
		}
	}
	p.Enabled = false
	if p.Has(nil) {
		t.Error("Has is true for a disabled plugin")
	}
}

func TestDeclares(t *testing.T) {
	p := parse(t)
	if !p.Declares("LOG_LEVEL") || p.Declares("UPLOAD_BACKOFF_MAX") {
		t.Fatal("Declares does not follow Config.Env")
	}
}
