// Package keys renders the S3 object keys under which s3logs stores log segments.
//
// A key has two parts. The prefix comes from a user-supplied Go text/template
// (log-opt prefix, default [DefaultPrefix]) rendered with the container's
// metadata and the UTC time of the segment's first record. The file part
// ([FilePart]) is fixed: first-record time in milliseconds, short container
// id and a per-stream sequence number, for example
//
//	web/2026/11/27/20261127T154405.123Z_3f2a9c1b7d4e_000042.jsonl.zst
//
// The file part makes every key unique; the prefix only groups objects.
//
// Templates. The prefix comes from whoever starts a container, so a
// template is a restricted text/template: fields, constants, pipelines,
// {{if}}/{{else}} and the functions in [PrefixFuncs] only. Whatever can
// loop, recurse or reuse a computed value ({{range}}, {{with}},
// {{define}}, {{template}}, {{block}}, variables) and the functions that
// multiply their input (js, html, urlquery) are refused by [ParsePrefix],
// and print and printf results, printf widths, the template's output and
// its source are bounded, so rendering costs time and memory linear in the
// template's length (at most [MaxPrefixTemplateLen] bytes).
//
// Sanitizing. Container names, image names and templates are not trusted to
// produce good keys, so every rendered key is cleaned: invalid UTF-8 bytes,
// C0 and C1 control characters, DEL, U+FFFE and U+FFFF become "_"; a leading
// "/" and empty path elements ("a//b") are removed; "." and ".." elements
// become "_" and "__". The result is valid UTF-8 and at most [MaxKeyLen]
// bytes; when the limit is hit the prefix is shortened (never the file part)
// and never inside a UTF-8 sequence. Sanitizing never makes a string longer.
//
// Concurrency: a [*Prefix] is immutable after [ParsePrefix] and safe for
// concurrent use; the package has no other state.
package keys
