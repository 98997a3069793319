// Package logentry holds the protobuf messages of Docker's logging-plugin FIFO.
package logentry

// Regenerate entry.pb.go (needs protoc and
// `go install github.com/gogo/protobuf/protoc-gen-gogofaster@v1.3.2`, the
// gogo/protobuf version pinned in go.mod):
//
//go:generate protoc --proto_path=. --gogofaster_out=paths=source_relative:. entry.proto
