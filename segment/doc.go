// Package segment writes zstd-compressed log segments into a spool folder.
package segment
