package logopt

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// SettingAllowedEndpoints is the plugin setting an EndpointPolicy is parsed
// from.
const SettingAllowedEndpoints = "ALLOWED_ENDPOINTS"

// wantPolicy is the accepted form of ALLOWED_ENDPOINTS, as messages state it.
const wantPolicy = `empty (any endpoint), none (no endpoint log-opt: AWS S3 only), or a comma-separated list of ` +
	`http(s)://host[:port] (exactly that scheme, host and port; no port means 80 or 443) ` +
	`and host or host:port (that host with any scheme, and any port unless given), ` +
	`where host is a name, an IPv4 address, an IPv6 address in brackets, or *.domain for every subdomain of domain`

// EndpointPolicy restricts which endpoints the endpoint log-opt may name,
// for hosts where the owners of containers are not trusted with the
// plugin's credentials and network position (the plugin would otherwise
// send signed requests, and the logs, to any server they name).
//
// A container that sets no endpoint uses AWS S3 and is always allowed.
// Otherwise the endpoint must match one entry of the policy:
//
//   - http://host[:port] or https://host[:port] matches exactly that
//     scheme, host and port; a missing port means the scheme's default
//     (80 or 443), on both sides.
//   - host or host:port matches that host with either scheme, and any port
//     unless one is given.
//   - A host "*.example.com" matches every subdomain of example.com (not
//     example.com itself, never an IP address).
//
// Host names compare case-insensitively, without a trailing dot, and are not
// resolved: an allowed name is trusted to lead to an allowed server. IP
// addresses compare as addresses ("[0:0::1]" is "[::1]"), and an IPv4
// address never matches a name or an IPv6 address that denotes it.
//
// The zero value allows every endpoint. An EndpointPolicy is immutable and
// safe for concurrent use.
type EndpointPolicy struct {
	awsOnly bool           // "none": no endpoint at all
	rules   []endpointRule // empty and !awsOnly: any endpoint
}

// endpointRule is one entry of an EndpointPolicy.
type endpointRule struct {
	src    string // the entry as written, for messages
	scheme string // "http", "https" or "" for either
	host   string // normalized (see normHost); for a wildcard, the suffix ".example.com"
	wild   bool   // host is a suffix
	port   string // decimal without leading zeros, or "" for any
}

// ParseEndpointPolicy parses the ALLOWED_ENDPOINTS setting (see
// EndpointPolicy): empty or blank allows any endpoint, "none" (any case)
// allows none (AWS S3 only), anything else is a comma-separated list of
// entries, spaces around them ignored. Every bad entry is reported (one line
// each, joined with errors.Join, naming the setting, the entry and the
// accepted form); entries never hold credentials, and any that look like
// them are shown redacted.
func ParseEndpointPolicy(s string) (EndpointPolicy, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return EndpointPolicy{}, nil
	}
	if strings.EqualFold(s, "none") {
		return EndpointPolicy{awsOnly: true}, nil
	}
	var p EndpointPolicy
	var errs []error
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if strings.EqualFold(e, "none") {
			errs = append(errs, fmt.Errorf("%s=%s: none cannot be combined with other entries: want %s",
				SettingAllowedEndpoints, quote(redactEndpoint(s)), wantPolicy))
			continue
		}
		r, err := parseRule(e)
		if err != nil {
			cause := ""
			if err != errBadEntry {
				cause = " (" + err.Error() + ")"
			}
			errs = append(errs, fmt.Errorf("%s entry %s is invalid: want %s%s",
				SettingAllowedEndpoints, quote(redactEndpoint(e)), wantPolicy, cause))
			continue
		}
		p.rules = append(p.rules, r)
	}
	if len(errs) > 0 {
		return EndpointPolicy{}, errors.Join(errs...)
	}
	return p, nil
}

var errBadEntry = errors.New("bad entry")

func parseRule(e string) (endpointRule, error) {
	r := endpointRule{src: e}
	rest := e
	if i := strings.Index(e, "://"); i >= 0 {
		r.scheme = strings.ToLower(e[:i])
		if r.scheme != "http" && r.scheme != "https" {
			return r, errors.New("the scheme must be http or https")
		}
		rest = strings.TrimSuffix(e[i+3:], "/")
	}
	if rest == "" {
		return r, errors.New("empty entry")
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`@/?#%\`, c) >= 0 {
			return r, errors.New("an entry has no credentials, path, query or spaces")
		}
	}
	host, port, err := splitHostPort(rest)
	if err != nil {
		return r, err
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return r, errors.New("a port is a number from 1 to 65535")
		}
		r.port = strconv.Itoa(n)
	} else if r.scheme != "" {
		r.port = defaultPort(r.scheme)
	}
	if name, ok := strings.CutPrefix(host, "*."); ok {
		if _, err := netip.ParseAddr(name); err == nil || !validHostName(name) {
			return r, errors.New("*. must be followed by a domain name")
		}
		r.host, r.wild = "."+normHost(name), true
		return r, nil
	}
	if strings.HasPrefix(host, "[") {
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() {
			return r, errors.New("brackets hold an IPv6 address")
		}
		r.host = a.String()
		return r, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is6() {
			return r, errors.New("an IPv6 address goes in brackets")
		}
		r.host = a.String()
		return r, nil
	}
	if !validHostName(host) {
		return r, errBadEntry
	}
	r.host = normHost(host)
	return r, nil
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port"; the
// host keeps its brackets.
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", errors.New("missing ]")
		}
		host, rest := s[:end+1], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if rest[0] != ':' || rest == ":" {
			return "", "", errors.New("want [address]:port")
		}
		return host, rest[1:], nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, "", nil
	}
	if strings.IndexByte(s[:i], ':') >= 0 {
		return "", "", errors.New("an IPv6 address goes in brackets")
	}
	if i == len(s)-1 {
		return "", "", errors.New("a port is a number from 1 to 65535")
	}
	return s[:i], s[i+1:], nil
}

// validHostName reports whether s is a DNS name: dot-separated labels of
// 1 to 63 letters, digits, "-" and "_", at most 253 bytes, with an optional
// trailing dot.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20
			if !('a' <= c && c <= 'z') && !isDigit(l[i]) && l[i] != '-' && l[i] != '_' {
				return false
			}
		}
	}
	return true
}

// normHost lower-cases a host name and drops one trailing dot; an IP
// address becomes its canonical form.
func normHost(h string) string {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String()
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// String returns the policy as ALLOWED_ENDPOINTS would state it: "" for
// any endpoint, "none", or the entries joined with ",".
func (p EndpointPolicy) String() string {
	if p.awsOnly {
		return "none"
	}
	srcs := make([]string, len(p.rules))
	for i, r := range p.rules {
		srcs[i] = r.src
	}
	return strings.Join(srcs, ",")
}

// Check returns nil if the policy allows the endpoint of o (see
// EndpointPolicy; no endpoint is always allowed), else a *Error for the
// endpoint option wrapping ErrNotAllowed, whose message shows the endpoint
// redacted and what the policy allows. A nil o is allowed.
func (p EndpointPolicy) Check(o *Options) error {
	if o == nil {
		return nil
	}
	return p.CheckEndpoint(o.Endpoint)
}

// CheckEndpoint is Check for an endpoint URL as the endpoint log-opt gives
// it ("" for AWS S3), for example one read back from a spooled segment's
// destination. A value that is not an http or https URL with a host is
// refused unless the policy allows any endpoint.
func (p EndpointPolicy) CheckEndpoint(endpoint string) error {
	if endpoint == "" || (!p.awsOnly && len(p.rules) == 0) {
		return nil
	}
	if !p.awsOnly {
		if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
			scheme := strings.ToLower(u.Scheme)
			host := normHost(u.Hostname())
			port := u.Port()
			if port == "" {
				port = defaultPort(scheme)
			} else if n, err := strconv.Atoi(port); err == nil {
				port = strconv.Itoa(n)
			}
			_, ipErr := netip.ParseAddr(host)
			for _, r := range p.rules {
				if r.matches(scheme, host, port, ipErr == nil) {
					return nil
				}
			}
		}
	}
	return &Error{Option: OptEndpoint, Value: redactEndpoint(endpoint), Want: p.want(), Err: ErrNotAllowed}
}

func (r endpointRule) matches(scheme, host, port string, isIP bool) bool {
	if (scheme != "http" && scheme != "https") || (r.scheme != "" && r.scheme != scheme) ||
		(r.port != "" && r.port != port) {
		return false
	}
	if r.wild {
		return !isIP && len(host) > len(r.host) && strings.HasSuffix(host, r.host)
	}
	return host == r.host
}

// want is the Want of a refusal: what the policy allows.
func (p EndpointPolicy) want() string {
	if p.awsOnly {
		return "no endpoint (AWS S3): the plugin setting " + SettingAllowedEndpoints + "=none allows no other"
	}
	srcs := make([]string, len(p.rules))
	for i, r := range p.rules {
		srcs[i] = r.src
	}
	return "no endpoint (AWS S3) or one that the plugin setting " + SettingAllowedEndpoints + " allows: " + strings.Join(srcs, ", ")
}
