package logopt

import (
	"errors"
	"strings"
	"testing"
)

func TestParseEndpointPolicy(t *testing.T) {
	tests := []struct {
		in     string
		str    string // String() of the result
		errors []string
	}{
		{"", "", nil},
		{"  ", "", nil},
		{"none", "none", nil},
		{" NONE ", "none", nil},
		{"https://s3.example.com", "https://s3.example.com", nil},
		{"https://s3.example.com/, http://10.0.0.5:9000", "https://s3.example.com/,http://10.0.0.5:9000", nil},
		{"minio:9000,*.s3.example.com,[::1]:9000,[fe80::1],127.0.0.1,s3.example.com.", "minio:9000,*.s3.example.com,[::1]:9000,[fe80::1],127.0.0.1,s3.example.com.", nil},
		{"HTTP://MinIO:09000", "HTTP://MinIO:09000", nil},
		{"my_host", "my_host", nil},

		{"none,minio", "", []string{`ALLOWED_ENDPOINTS="none,minio": none cannot be combined with other entries: want ` + wantPolicy}},
		{"minio,", "", []string{`ALLOWED_ENDPOINTS entry "" is invalid: want ` + wantPolicy + ` (empty entry)`}},
		{",", "", []string{"empty entry", "empty entry"}},
		{"ftp://host", "", []string{`ALLOWED_ENDPOINTS entry "ftp://host" is invalid: want ` + wantPolicy + ` (the scheme must be http or https)`}},
		{"http://", "", []string{"empty entry"}},
		{"http://host/path", "", []string{"no credentials, path, query or spaces"}},
		{"host?x=1", "", []string{`"host?xxxxx"`}},
		{"http://AKIA:secret@host", "", []string{`ALLOWED_ENDPOINTS entry "http://xxxxx@host" is invalid: want ` + wantPolicy + ` (an entry has no credentials, path, query or spaces)`}},
		{"ho st", "", []string{"no credentials, path, query or spaces"}},
		{"host:0", "", []string{"a port is a number from 1 to 65535"}},
		{"host:65536", "", []string{"a port is a number from 1 to 65535"}},
		{"host:", "", []string{"a port is a number from 1 to 65535"}},
		{"host:http", "", []string{"a port is a number from 1 to 65535"}},
		{"::1", "", []string{"an IPv6 address goes in brackets"}},
		{"[::1", "", []string{"missing ]"}},
		{"[::1]x", "", []string{"want [address]:port"}},
		{"[1.2.3.4]", "", []string{"brackets hold an IPv6 address"}},
		{"[host]:80", "", []string{"brackets hold an IPv6 address"}},
		{"*", "", []string{`ALLOWED_ENDPOINTS entry "*" is invalid: want ` + wantPolicy}},
		{"*.", "", []string{"*. must be followed by a domain name"}},
		{"*.1.2.3.4", "", []string{"*. must be followed by a domain name"}},
		{"a.*.com", "", []string{`entry "a.*.com" is invalid`}},
		{"-bad..name", "", []string{`entry "-bad..name" is invalid`}},
		{"bad,also bad,fine", "", []string{`entry "also bad"`}},
		{"a b,c d", "", []string{`entry "a b"`, `entry "c d"`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParseEndpointPolicy(tt.in)
			if tt.errors == nil {
				if err != nil {
					t.Fatalf("ParseEndpointPolicy: %v", err)
				}
				if p.String() != tt.str {
					t.Errorf("String() = %q, want %q", p.String(), tt.str)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseEndpointPolicy(%q) = %v, want an error", tt.in, p)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.errors) {
				t.Fatalf("%d error lines, want %d: %v", len(lines), len(tt.errors), err)
			}
			for i, l := range lines {
				if !strings.HasPrefix(l, SettingAllowedEndpoints) || !strings.Contains(l, "want "+wantPolicy) {
					t.Errorf("line %q does not name the setting and the accepted form", l)
				}
				if !strings.Contains(l, tt.errors[i]) {
					t.Errorf("line %q does not contain %q", l, tt.errors[i])
				}
				if strings.Contains(l, "secret") {
					t.Errorf("line %q repeats a password", l)
				}
			}
		})
	}
}

func TestEndpointPolicyCheck(t *testing.T) {
	const list = "https://s3.example.com, http://10.0.0.5:9000, minio:9000, *.store.example, storage.local, [::1]:9000"
	tests := []struct {
		policy   string
		endpoint string
		ok       bool
	}{
		// Any endpoint when empty; no endpoint always.
		{"", "http://169.254.169.254", true},
		{"", "", true},
		{"none", "", true},
		{list, "", true},
		{"none", "https://s3.example.com", false},
		// URL entries: exact scheme, host and port (default port filled in).
		{list, "https://s3.example.com", true},
		{list, "https://s3.example.com/", true},
		{list, "https://S3.Example.COM:443", true},
		{list, "https://s3.example.com.", true},
		{list, "https://s3.example.com:8443", false},
		{list, "http://s3.example.com", false},
		{list, "https://s3.example.com.evil.net", false},
		{list, "https://evil-s3.example.com", false},
		{list, "https://sub.s3.example.com", false},
		{list, "http://10.0.0.5:9000", true},
		{list, "http://10.0.0.5:09000", true},
		{list, "https://10.0.0.5:9000", false},
		{list, "http://10.0.0.5", false},
		{list, "http://10.0.0.50:9000", false},
		// host:port entries: any scheme, that port.
		{list, "http://minio:9000", true},
		{list, "https://minio:9000", true},
		{list, "http://MINIO:9000/", true},
		{list, "http://minio", false},
		{list, "http://minio:9001", false},
		// host entries: any scheme and port.
		{list, "http://storage.local", true},
		{list, "https://storage.local:1234", true},
		{list, "http://x.storage.local", false},
		// wildcards: subdomains only, never IP addresses.
		{list, "https://a.store.example", true},
		{list, "http://a.b.store.example:9000", true},
		{list, "https://store.example", false},
		{list, "https://astore.example", false},
		{"*.0.0.1", "http://127.0.0.1", false},
		// IPv6 compares as an address.
		{list, "http://[::1]:9000", true},
		{list, "http://[0:0::1]:9000", true},
		{list, "http://[::1]:9001", false},
		{list, "http://[::2]:9000", false},
		{"127.0.0.1", "http://[::ffff:127.0.0.1]", false},
		{"127.0.0.1", "http://127.0.0.1:1", true},
		{"127.0.0.1", "http://localhost", false},
		// Not an endpoint Parse would accept: refused unless anything goes.
		{list, "minio:9000", false},
		{list, "ftp://minio:9000", false},
		{"", "ftp://minio:9000", true},
	}
	for _, tt := range tests {
		t.Run(tt.policy+" "+tt.endpoint, func(t *testing.T) {
			p, err := ParseEndpointPolicy(tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			err = p.CheckEndpoint(tt.endpoint)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckEndpoint(%q) = %v, want allowed %v", tt.endpoint, err, tt.ok)
			}
			if err != nil {
				var e *Error
				if !errors.As(err, &e) || e.Option != OptEndpoint || !errors.Is(err, ErrNotAllowed) || errors.Is(err, ErrInvalidValue) {
					t.Errorf("error %#v is not a *Error for %s wrapping ErrNotAllowed", err, OptEndpoint)
				}
			}
		})
	}
}

func TestEndpointPolicyMessages(t *testing.T) {
	p, err := ParseEndpointPolicy("https://s3.example.com, minio:9000")
	if err != nil {
		t.Fatal(err)
	}
	o, err := Parse(with(OptEndpoint, "http://10.0.0.9:9000"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Check(o)
	want := `log-opt endpoint="http://10.0.0.9:9000" is not allowed on this host: want no endpoint (AWS S3) or one that the plugin setting ALLOWED_ENDPOINTS allows: https://s3.example.com, minio:9000`
	if err == nil || err.Error() != want {
		t.Errorf("message:\n got %v\nwant %s", err, want)
	}
	none, _ := ParseEndpointPolicy("none")
	err = none.Check(o)
	want = `log-opt endpoint="http://10.0.0.9:9000" is not allowed on this host: want no endpoint (AWS S3): the plugin setting ALLOWED_ENDPOINTS=none allows no other`
	if err == nil || err.Error() != want {
		t.Errorf("message:\n got %v\nwant %s", err, want)
	}
	// A value that did not come from Parse is still shown redacted.
	err = p.CheckEndpoint("http://AKIA:secret@10.0.0.9:9000/?sig=abc")
	if err == nil || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "abc") ||
		!strings.Contains(err.Error(), `"http://xxxxx@10.0.0.9:9000/?xxxxx"`) {
		t.Errorf("unredacted: %v", err)
	}
	// The zero value and nil options allow everything.
	var zero EndpointPolicy
	if err := zero.Check(o); err != nil || zero.String() != "" {
		t.Errorf("zero policy: %v %q", err, zero.String())
	}
	if err := none.Check(nil); err != nil {
		t.Errorf("Check(nil) = %v", err)
	}
	def, _ := Parse(with())
	if err := none.Check(def); err != nil {
		t.Errorf("none refused AWS: %v", err)
	}
}
