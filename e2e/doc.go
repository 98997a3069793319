// Package e2e holds the end-to-end tests of the s3logs plugin.
//
// The tests run real containers on the local Docker Engine with
// `--log-driver s3logs:latest` (the plugin installed by `make plugin`; set
// S3LOGS_PLUGIN to test another name) against a throwaway MinIO server
// (internal/miniotest), fetch the uploaded segments with
// `aws s3 cp --recursive` and `zstd -dc`, and compare the concatenated "log"
// fields of each stream byte for byte with what the log generator
// (cmd/loggen, internal/loggen) wrote.
//
// Requirements: a running Docker Engine, the plugin installed, the aws CLI,
// zstd, Go (to build the generator image), MinIO (bin/minio, built on
// demand) and, for TestRegistry, Debian's docker-registry (`make test`
// installs what is missing and starts an engine if none runs). When one is
// missing the tests skip, except under CI=true, where they fail.
//
// For the duration of the run the suite reconfigures the plugin (it is the
// only user of the plugin on the machine): it disables it, sets the MinIO
// credentials and a temporary spool folder, enables it, and restores the
// earlier settings at the end. Containers carry the label s3logs-e2e; those
// left by an earlier, interrupted run are removed at start.
//
// Run with `make e2e` (which reinstalls the plugin first) or
// `go test -v ./e2e` against an installed plugin.
package e2e
