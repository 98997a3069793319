// Command bench is the end-to-end benchmark harness of s3logs (`make bench`,
// after the Go benchmarks): it runs container workloads on the real Docker
// Engine through s3logs, the null plugin (cmd/nullplugin, the physical limit
// of any logging plugin), json-file and local, alternating each
// configuration with the null plugin, and measures wall time, the plugin's
// CPU and memory, and what reached S3. A scale part measures the plugin with
// hundreds of containers. It prints one table and writes it as Markdown.
//
// It needs the plugins $PLUGIN (s3logs, installed by `make plugin`) and
// $NULL_PLUGIN (`make nullplugin`), the workload image (`make bench-image`)
// and a MinIO binary (`make minio`); it starts MinIO itself, points the
// s3logs plugin at it with a temporary spool (restoring the earlier settings
// at the end) and removes every container it created.
//
// Run length: RUNS (default 5) pairs per configuration; QUICK=1 is a smoke
// test (1 run, workloads and container counts divided by 100). Flags select
// parts; see -h.
package main
