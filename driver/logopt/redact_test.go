package logopt

import (
	"errors"
	"strings"
	"testing"
)

func TestRedactEndpoint(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"http://127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"https://s3.example.com/", "https://s3.example.com/"},
		{"http://[::1]:9000", "http://[::1]:9000"},
		{"http://[::1", "http://[::1"},
		{"http://host:99999", "http://host:99999"},
		{"http://host:9x00", "http://host:9x00"},
		{"http://host/bucket", "http://host/bucket"},
		{"127.0.0.1:9000", "127.0.0.1:9000"},
		// userinfo, with or without a password, parsable or not
		{"http://AKIA:secret@host:9000/", "http://xxxxx@host:9000/"},
		{"http://AKIA@host:9000", "http://xxxxx@host:9000"},
		{"HTTPS://AKIA:secret@host", "HTTPS://xxxxx@host"},
		{"http://AKIA:se/cret@host:9000", "http://xxxxx@host:9000"},
		{"http://AKIA:se?cret@host", "http://xxxxx@host"},
		{"http://AKIA:se#cret@host", "http://xxxxx@host"},
		{"http://AKIA:se@cret@host", "http://xxxxx@host"},
		{"http://AKIA:se cret@host", "http://xxxxx@host"},
		{"http://AKIA:se%zzcret@host", "http://xxxxx@host"},
		{"http://AKIA:secret@[::1", "http://xxxxx@[::1"},
		{"http://AKIA:secret@host:port", "http://xxxxx@host:port"},
		{"AKIA:secret@host:9000", "xxxxx@host:9000"},
		{"AKIA:secret@http://host", "xxxxx@http://host"},
		{" http://AKIA:secret@host", "xxxxx@host"},
		{"http:AKIA:secret@host", "xxxxx@host"},
		{"http://host/?x=@", "http://xxxxx@"},
		// query and fragment
		{"http://host:9000/?X-Amz-Signature=abc&X-Amz-Credential=AKIA", "http://host:9000/?xxxxx"},
		{"http://host?token=abc#frag", "http://host?xxxxx"},
		{"http://host#token", "http://host#xxxxx"},
		// a password after ":" with the "@host" forgotten
		{"http://AKIA:wJalrXUtnFEMI", "http://AKIA:xxxxx"},
		{"http://AKIA:wJalrXUtnFEMI/", "http://AKIA:xxxxx/"},
		{"AKIA:wJalrXUtnFEMI", "AKIA:xxxxx"},
		{"http://[::1]:wJalrXUtnFEMI", "http://[::1]:xxxxx"},
		{"http://host:123456", "http://host:123456"}, // digits: a bad port, not a secret
	}
	for _, tt := range tests {
		if got := redactEndpoint(tt.in); got != tt.want {
			t.Errorf("redactEndpoint(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Every endpoint error names the option and the accepted form and never
// repeats a password, whether the value parses as a URL or not.
func TestParseEndpointRedacted(t *testing.T) {
	const secret = "wJalrXUtnFEMIK7MDENG"
	tests := []struct {
		val   string
		shown string // the Value in the error
		creds bool   // the message says credentials do not belong here
	}{
		{"http://AKIA:" + secret + "@host:9000", "http://xxxxx@host:9000", true},
		{"http://AKIA:" + secret + "@host:9000/", "http://xxxxx@host:9000/", true},
		{"https://" + secret + "@s3.example.com", "https://xxxxx@s3.example.com", true},
		{"http://AKIA:" + secret + " @host:9000", "http://xxxxx@host:9000", true},         // unparsable userinfo
		{"http://AKIA:" + secret + "%zz@host", "http://xxxxx@host", true},                 // bad escape
		{"http://AKIA:" + secret + "/x@host:9000", "http://xxxxx@host:9000", true},        // "/" in the password
		{"http://AKIA:" + secret + "@[::1", "http://xxxxx@[::1", true},                    // bad host after it
		{"http://AKIA:" + secret + "@host:99999", "http://xxxxx@host:99999", true},        // bad port after it
		{"AKIA:" + secret + "@host:9000", "xxxxx@host:9000", true},                        // no scheme
		{"ftp://AKIA:" + secret + "@host", "ftp://xxxxx@host", true},                      // wrong scheme
		{"http://AKIA:" + secret, "http://AKIA:xxxxx", false},                             // "@host" forgotten
		{"http://host:9000/?X-Amz-Signature=" + secret, "http://host:9000/?xxxxx", false}, // presigned query
		{"http://host:9000#" + secret, "http://host:9000#xxxxx", false},
		{"http://host:9000\n" + secret, "http://host:xxxxx", false},         // not a port: may be a password
		{"http://host:9000/" + secret, "http://host:9000/" + secret, false}, // a path is shown
	}
	for _, tt := range tests {
		t.Run(tt.val, func(t *testing.T) {
			_, err := Parse(with(OptEndpoint, tt.val))
			errs := errorsOf(t, err)
			if len(errs) != 1 || errs[0].Option != OptEndpoint || !errors.Is(err, ErrInvalidValue) {
				t.Fatalf("Parse = %v", err)
			}
			if errs[0].Value != tt.shown {
				t.Errorf("Value = %q, want %q", errs[0].Value, tt.shown)
			}
			msg := err.Error()
			if tt.shown != tt.val && strings.Contains(msg, secret) {
				t.Errorf("message repeats the secret: %s", msg)
			}
			if !strings.HasPrefix(msg, "log-opt endpoint=") || !strings.Contains(msg, "want "+wantEndpoint) || strings.Contains(msg, "\n") {
				t.Errorf("message does not name the option and the accepted form on one line: %s", msg)
			}
			if got := strings.Contains(msg, credentialsHint); got != tt.creds {
				t.Errorf("credentials hint %v, want %v: %s", got, tt.creds, msg)
			}
		})
	}
}

// FuzzEndpointRedacted: a password in the userinfo of an endpoint is never
// repeated by Parse, whatever surrounds it.
func FuzzEndpointRedacted(f *testing.F) {
	f.Add("http://", "AKIA", "wJalrXUtnFEMI", "host:9000/")
	f.Add("", "u", "p@ss/w?rd#x", "[::1")
	f.Add("ftp://", "", "secretsecret", "h:port?x")
	f.Add("http:", "AKIA", "s3cr3t-value", "")
	f.Fuzz(func(t *testing.T, scheme, user, pass, host string) {
		if len(pass) < 8 {
			return // too short to tell a leak from a coincidence
		}
		val := scheme + user + ":" + pass + "@" + host
		_, err := Parse(with(OptEndpoint, val))
		if err == nil {
			t.Fatalf("endpoint %q with userinfo accepted", val)
		}
		msg := err.Error()
		if !strings.Contains(msg, pass) {
			return
		}
		// A coincidence if the message still holds it with the password
		// replaced (pass is part of the scheme, host or fixed text).
		other := scheme + user + ":" + "Q" + "@" + host
		_, err2 := Parse(with(OptEndpoint, other))
		if err2 == nil || !strings.Contains(err2.Error(), pass) {
			t.Fatalf("endpoint %q: message repeats the password %q: %s", val, pass, msg)
		}
	})
}
