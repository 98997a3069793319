// Package logopt validates the --log-opt map Docker passes to the s3logs driver.
//
// Docker never asks a logging plugin to validate options ahead of time: the
// map arrives with every StartLogging request, and the only way to refuse it
// is to fail that request. The user then sees
//
//	docker: Error response from daemon: failed to initialize logging driver: <message>
//
// so every message names the option, quotes the value and says what is
// accepted, on one line. Values that may carry a credential are not
// repeated: an endpoint's userinfo, query and fragment (and a non-numeric
// "port" that may be a password) show as "xxxxx", whether or not the value
// parses as a URL, and the value of an unknown option is never shown. [Parse] reports all problems at once (one line
// each, joined with errors.Join) in a stable order: unknown options (sorted
// by name), then bad values in the order of the option table below, then
// missing options and combinations.
//
// Options (an empty value means the default, except for bucket):
//
//	bucket             required; S3 bucket name (3-63 of a-z 0-9 . -)
//	region             S3 region, e.g. us-east-1; default: chosen by the uploader
//	endpoint           http(s)://host[:port] of an S3-compatible server; default: AWS
//	force-path-style   true|false; default true when endpoint is set, else false
//	prefix             Go template for the key prefix; default keys.DefaultPrefix
//	segment-size       512k, 64m, 1g ... (64k to 5g); default 64m
//	segment-age        Go duration (1s to 24h); default 5m
//	compression-level  fastest|default|better|best; default fastest
//	storage-class      STANDARD, STANDARD_IA, GLACIER_IR, ...; default: bucket's
//	sse                AES256|aws:kms; default: none requested
//	sse-kms-key-id     KMS key id, ARN or alias; only with sse=aws:kms
//	labels, labels-regex, env, env-regex
//	                   container labels and environment variables to attach to
//	                   every record as "attrs", as Docker's json-file driver does
//
// Docker's own options (mode, max-buffer-size, cache-disabled,
// cache-max-size, cache-max-file, cache-compress) are in the same map; they
// are accepted and ignored. Any other option is refused, so a typo cannot
// silently fall back to a default.
//
// Endpoint policy. On hosts where the owners of containers are not trusted,
// the plugin setting ALLOWED_ENDPOINTS restricts the endpoints they may
// name: [ParseEndpointPolicy] reads it and [EndpointPolicy.Check] refuses a
// parsed Options whose endpoint it does not allow, with a *Error wrapping
// ErrNotAllowed. Parse itself does not apply it.
//
// Concurrency: Parse has no shared state; an *Options is read-only after
// Parse and safe for concurrent use.
package logopt
