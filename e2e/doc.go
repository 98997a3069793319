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
// For the duration of each test the suite reconfigures the plugin (it is
// the only user of the plugin on the machine): it disables it, sets the
// MinIO credentials and a temporary spool folder, enables it, and restores
// the earlier settings at the end (internal/dockerplugin). Containers carry
// the label s3logs-e2e; those left by an earlier, interrupted run are
// removed at start.
//
// The fault tests (faults_test.go, TestFault*) inject one fault each into
// the engine, the plugin or MinIO, on the harness of faults_harness_test.go:
// each restores dockerd, MinIO and the plugin's settings when it ends, then
// checks that the spool drained and that no secret leaked. They never run
// in parallel.
//
// Time is judged only with bounds that a real fault crosses by far (a
// container held by S3, a segment left for its age), never with the
// product's precise figures, which a loaded 2-core machine can miss; `make
// bench` measures those against their budgets.
//
// Run with `make e2e` (which reinstalls the plugin first) or
// `go test -v ./e2e` against an installed plugin; one fault alone with
// `make e2e E2E_FLAGS="-run '^TestFaultS3Outage'"`.
package e2e
