// Command bench is the end-to-end benchmark harness of s3logs (`make bench`,
// after the Go benchmarks): it runs container workloads on the real Docker
// Engine through s3logs, the null plugin (cmd/nullplugin, the physical limit
// of any logging plugin), json-file and local, alternating each
// configuration with the null plugin, and measures wall time, the plugin's
// CPU and memory, what reached S3 and how long after each container's exit
// its last lines were there. An outage part alternates runs with S3 up and
// with MinIO stopped and reports the slowdown as a ratio between them; a
// scale part measures the plugin with hundreds of containers. It prints one
// table and writes it as Markdown, with the budgets of issues 3, 4 and 5.
// The end-to-end tests (e2e/) judge timing only with coarse bounds; the
// precise figures are this harness's.
//
// The containers run the log generator of the tests (internal/loggen, the
// command cmd/loggen; its modes seq and json are the "short" and "json"
// workloads), from the workload image $BENCH_IMAGE (`make bench-image`,
// which builds it from bench/gen). It needs the plugins $PLUGIN (s3logs,
// installed by `make plugin`) and $NULL_PLUGIN (`make nullplugin`) and a
// MinIO binary $MINIO (`make minio`); it starts MinIO itself
// (internal/miniotest), points the s3logs plugin at it with a temporary
// spool (internal/dockerplugin; the earlier settings are restored at the
// end) and removes every container it created.
//
// Run length: RUNS (default 5) pairs per configuration; QUICK=1 is a smoke
// test (1 run, workloads and container counts divided by 100). Flags select
// parts (-parts e2e,outage,scale,objects); see -h.
package main
