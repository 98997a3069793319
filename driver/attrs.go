package driver

import "github.com/s3logs/s3logs/driver/record"

// marshalAttrs precomputes a stream's "attrs" JSON once.
func marshalAttrs(m map[string]string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	return record.MarshalAttrs(m)
}
