package fifo

import (
	"errors"

	"github.com/s3logs/s3logs/driver/logentry"
)

// The parser below accepts and rejects exactly what the gogo-generated
// logentry.LogEntry.Unmarshal does (FuzzDecoder checks this against the
// generated code), but resets every field first, reuses Line's capacity and
// interns strings, so a steady stream of entries allocates nothing.

var (
	errOverflow    = errors.New("varint overflows 64 bits")
	errShort       = errors.New("unexpected end of message")
	errLength      = errors.New("length out of range")
	errWireType    = errors.New("wrong wire type")
	errTag         = errors.New("illegal field number")
	errEndGroup    = errors.New("unexpected end group")
	errIllegalWire = errors.New("illegal wire type")
)

const (
	stdout = "stdout"
	stderr = "stderr"
)

// varint reads a base-128 varint at p[i:] and returns its value (truncated to
// 64 bits, as gogo does) and the index after it.
func varint(p []byte, i int) (uint64, int, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= 64 {
			return 0, 0, errOverflow
		}
		if i >= len(p) {
			return 0, 0, errShort
		}
		b := p[i]
		i++
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, i, nil
		}
	}
}

// field reads a tag at p[i:] and returns field number, wire type and the
// index after the tag.
func field(p []byte, i int) (int32, int, int, error) {
	wire, i, err := varint(p, i)
	if err != nil {
		return 0, 0, 0, err
	}
	num := int32(wire >> 3) // gogo truncates to int32 too
	wt := int(wire & 7)
	if wt == 4 {
		return 0, 0, 0, errEndGroup
	}
	if num <= 0 {
		return 0, 0, 0, errTag
	}
	return num, wt, i, nil
}

// bytesField reads a length-delimited value at p[i:] and returns it and the
// index after it.
func bytesField(p []byte, i int) ([]byte, int, error) {
	n, i, err := varint(p, i)
	if err != nil {
		return nil, 0, err
	}
	if n > uint64(len(p)-i) {
		return nil, 0, errLength
	}
	end := i + int(n)
	return p[i:end], end, nil
}

// skip skips the unknown field whose tag starts at p[start:], with gogo's
// semantics (groups nest; an end group closes any open group).
func skip(p []byte, start int) (int, error) {
	i := start
	depth := 0
	for i < len(p) {
		wire, j, err := varint(p, i)
		if err != nil {
			return 0, err
		}
		i = j
		switch wire & 7 {
		case 0:
			if _, i, err = varint(p, i); err != nil {
				return 0, err
			}
		case 1:
			i += 8
		case 2:
			n, j, err := varint(p, i)
			if err != nil {
				return 0, err
			}
			if n > uint64(len(p)-j) {
				return 0, errLength
			}
			i = j + int(n)
		case 3:
			depth++
		case 4:
			if depth == 0 {
				return 0, errEndGroup
			}
			depth--
		case 5:
			i += 4
		default:
			return 0, errIllegalWire
		}
		if i > len(p) {
			return 0, errShort
		}
		if depth == 0 {
			return i, nil
		}
	}
	return 0, errShort
}

// varintValue reads the varint value of a field at p[j:] after checking that
// its wire type wt is varint (0).
func varintValue(p []byte, wt, j int) (uint64, int, error) {
	if wt != 0 {
		return 0, 0, errWireType
	}
	return varint(p, j)
}

// bytesValue reads the length-delimited value of a field at p[j:] after
// checking that its wire type wt is 2.
func bytesValue(p []byte, wt, j int) ([]byte, int, error) {
	if wt != 2 {
		return nil, 0, errWireType
	}
	return bytesField(p, j)
}

// unmarshal decodes a LogEntry payload into e.
func (d *Decoder) unmarshal(p []byte, e *logentry.LogEntry) error {
	e.Source = ""
	e.TimeNano = 0
	e.Line = e.Line[:0]
	e.Partial = false
	e.PartialLogMetadata = nil
	for i := 0; i < len(p); {
		num, wt, j, err := field(p, i)
		if err != nil {
			return err
		}
		switch num {
		case 1:
			var b []byte
			if b, i, err = bytesValue(p, wt, j); err != nil {
				return err
			}
			e.Source = d.internSource(b)
		case 2:
			var v uint64
			if v, i, err = varintValue(p, wt, j); err != nil {
				return err
			}
			e.TimeNano = int64(v)
		case 3:
			var b []byte
			if b, i, err = bytesValue(p, wt, j); err != nil {
				return err
			}
			e.Line = append(e.Line[:0], b...)
		case 4:
			var v uint64
			if v, i, err = varintValue(p, wt, j); err != nil {
				return err
			}
			e.Partial = v != 0
		case 5:
			var b []byte
			if b, i, err = bytesValue(p, wt, j); err != nil {
				return err
			}
			if e.PartialLogMetadata == nil {
				// First occurrence; later ones merge, as in protobuf.
				d.meta = logentry.PartialLogEntryMetadata{}
				e.PartialLogMetadata = &d.meta
			}
			if err := d.unmarshalMeta(b, e.PartialLogMetadata); err != nil {
				return err
			}
		default:
			if i, err = skip(p, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// unmarshalMeta merges a PartialLogEntryMetadata payload into m.
func (d *Decoder) unmarshalMeta(p []byte, m *logentry.PartialLogEntryMetadata) error {
	for i := 0; i < len(p); {
		num, wt, j, err := field(p, i)
		if err != nil {
			return err
		}
		switch num {
		case 1:
			var v uint64
			if v, i, err = varintValue(p, wt, j); err != nil {
				return err
			}
			m.Last = v != 0
		case 2:
			var b []byte
			if b, i, err = bytesValue(p, wt, j); err != nil {
				return err
			}
			if string(b) != d.lastID {
				d.lastID = string(b)
			}
			m.Id = d.lastID
		case 3:
			var v uint64
			if v, i, err = varintValue(p, wt, j); err != nil {
				return err
			}
			m.Ordinal = int32(v)
		default:
			if i, err = skip(p, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// internSource returns b as a string without allocating for "stdout",
// "stderr" and a repeat of the previous other source.
func (d *Decoder) internSource(b []byte) string {
	switch string(b) {
	case stdout:
		return stdout
	case stderr:
		return stderr
	case d.lastSource:
		return d.lastSource
	}
	d.lastSource = string(b)
	return d.lastSource
}

// walk checks the fields of an n-byte LogEntry payload of which only the
// prefix p has arrived (len(p) < n), from payload offset i on, depth groups
// deep. It returns the offset of the first field it has not checked yet
// (possibly beyond p, after a length-delimited field whose contents have not
// all arrived), the group depth there, and whether a field already makes the
// payload invalid. It is conservative: it reports invalid only what
// unmarshal rejects whatever the remaining bytes are (same tag, wire type and
// length checks, gogo's group semantics as in skip), and leaves the contents
// of length-delimited fields (metadata) to unmarshal.
func walk(p []byte, n, i, depth int) (int, int, bool) {
	for i < len(p) {
		wire, j, err := varint(p, i)
		if err != nil {
			return i, depth, err != errShort
		}
		wt := int(wire & 7)
		if depth == 0 { // a field of the LogEntry: the checks of field and unmarshal
			num := int32(wire >> 3)
			if wt == 4 || num <= 0 {
				return i, depth, true
			}
			switch num {
			case 2, 4:
				if wt != 0 {
					return i, depth, true
				}
			case 1, 3, 5:
				if wt != 2 {
					return i, depth, true
				}
			}
		}
		switch wt {
		case 0:
			_, k, err := varint(p, j)
			if err != nil {
				return i, depth, err != errShort
			}
			i = k
		case 1:
			if j+8 > n {
				return i, depth, true
			}
			i = j + 8
		case 2:
			l, k, err := varint(p, j)
			if err != nil {
				return i, depth, err != errShort
			}
			if l > uint64(n-k) {
				return i, depth, true
			}
			i = k + int(l)
		case 3:
			depth++
			i = j
		case 4: // depth > 0 here
			depth--
			i = j
		case 5:
			if j+4 > n {
				return i, depth, true
			}
			i = j + 4
		default:
			return i, depth, true
		}
	}
	return i, depth, false
}
