// Package loggen generates deterministic container output for the s3logs
// tests and benchmarks.
//
// A Spec names a mode and its parameters. The sequence of lines a Spec
// produces is a pure function of the Spec: line i of a Spec is always the
// same bytes to the same stream. cmd/loggen (Main) writes those lines inside
// a test or benchmark container; the end-to-end tests call Expected with
// the same Spec to compute, byte for byte, what the container wrote to
// stdout and to stderr, and the pipeline benchmark (driver) records the
// same lines as a FIFO stream, so the benchmarks on Docker and in isolation
// describe the same records.
//
// A container that is stopped early has written a prefix of the sequence;
// Expected(spec, n) gives the bytes of the first n lines so such a prefix
// can be checked too.
//
// Every write call holds whole lines (their trailing newlines included,
// except for the final line of ModeNoTrail): one line, or with Buffer as
// many as fit, so a process that stops between writes leaves whole lines
// behind.
//
// Spec values are plain data and safe to share between goroutines.
package loggen
