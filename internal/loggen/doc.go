// Package loggen generates deterministic container output for the s3logs tests.
//
// A Spec names a mode and its parameters. The sequence of writes a Spec
// produces is a pure function of the Spec: write i of a Spec is always the
// same bytes to the same stream. cmd/loggen performs those writes inside a
// test container, and the end-to-end tests call Expected with the same Spec to
// compute, byte for byte, what the container wrote to stdout and to stderr.
//
// A container that is stopped early has written a prefix of the sequence;
// Expected(spec, n) gives the bytes of the first n writes so such a prefix can
// be checked too.
//
// Every write is one line (its trailing newline included, except for the final
// write of ModeNoTrail), so a process that stops between writes leaves whole
// lines behind.
//
// Spec values are plain data and safe to share between goroutines.
package loggen
