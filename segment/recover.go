package segment

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Bounds of the records the driver builds. Package driver imports this one,
// so the values are repeated here; maxrecord_test.go checks them against
// the driver's exported constants and builds the worst record.
const (
	// maxLogLine bounds the "log" field before escaping: a record's line is
	// at most driver/record.MaxRecordSize.
	maxLogLine = 1 << 20
	// maxSource bounds the "stream" field before escaping: it comes from
	// one FIFO frame, at most driver/fifo.MaxFrameSize.
	maxSource = 1 << 20
	// maxAttrs bounds the "attrs" object before escaping: its labels and
	// environment variables come from one StartLogging request, whose body
	// the driver reads up to 4 MiB (maxBody in driver/http.go), and each
	// entry ("k":"v",) takes no more bytes than it took in the request.
	maxAttrs = 4 << 20
	// jsonGrowth is the most JSON escaping grows one byte: control bytes,
	// '<', '>' and '&' become \u00XX, a byte of invalid UTF-8 \ufffd.
	jsonGrowth = 6
	// recordFraming covers the rest of a line: field names and quotes, the
	// escaped newline, the RFC 3339 time (at most 30 bytes) and the '\n'.
	recordFraming = 256
)

// MaxRecordLen is the longest record, '\n' included, that Append accepts and
// recovery keeps: 36 MiB + 256 bytes, the largest JSON line the driver can
// build (a 1 MiB line, a stream name of up to 1 MiB and attrs of up to
// 4 MiB, every byte escaped to six).
const MaxRecordLen = jsonGrowth*(maxLogLine+maxSource+maxAttrs) + recordFraming

// maxRecoverLine bounds one record during recovery: longer means corrupt.
// Recovery holds one record in memory, so this is also its memory bound.
const maxRecoverLine = MaxRecordLen

// recoverSuffix ends the temporary file recovery writes the repaired
// segment to before it is renamed into place.
const recoverSuffix = ".recover"

// RecoveryReport tells what Recover did with one in-progress file.
type RecoveryReport struct {
	// Path is the in-progress file that was found.
	Path string
	// Sealed is the repaired segment; nil when nothing complete was left.
	Sealed *Sealed
	// Records and Bytes count what was kept; TornBytes counts the decoded
	// bytes of an incomplete last record that was cut; Cut is set when the
	// compressed data ended inside a zstd block or frame.
	Records   int64
	Bytes     int64
	TornBytes int64
	Cut       bool
	// Quarantined is set when the original file was moved to the quarantine
	// folder because it was corrupt or had no usable sidecar; Err says why.
	Quarantined bool
	Err         error
}

// Recover repairs every in-progress segment left in the spool by a crash and
// seals it with reason ReasonRecovered. Call it once at start-up before any
// Writer is created: it must not run while a Writer appends to the same
// container folder.
//
// What is kept: every record whose line, up to and including its '\n',
// decodes completely, in order. What is cut: a torn tail, meaning the bytes
// after the last complete record when the data ends early (the file was cut
// inside a zstd block or frame, or inside a record). A file whose data is
// corrupt before its end (a zstd error other than running out of data, or a
// record longer than MaxRecordLen) keeps the records before the corruption in the
// repaired segment, and the original file and sidecar are moved to the
// quarantine folder and reported; the janitor deletes them after
// Config.QuarantineMaxAge. A file whose sidecar is missing or unusable is
// quarantined as it is; one whose sidecar cannot be read for another reason
// (such as EIO) is reported and left for the next start.
func (s *Spool) Recover() ([]RecoveryReport, error) {
	return s.rep.recoverAll()
}

// recoverFile repairs dir/name.partial. See Recover.
func (s *Spool) recoverFile(dir, name string) RecoveryReport { return s.rep.recoverFile(dir, name) }

// logReport logs the outcome of a repair.
func (s *Spool) logReport(r RecoveryReport) { s.rep.logReport(r) }

// repairer repairs in-progress files: at start-up (Spool.Recover) and for
// the janitor (abandoned files). It holds no mutable state of its own; its
// methods may run concurrently on different files.
type repairer struct {
	root    string
	log     *slog.Logger
	now     func() time.Time
	recTime func([]byte) (time.Time, bool)
	acct    *ledger // told about every segment it seals
}

// recoverAll repairs every in-progress file of the spool. See Spool.Recover.
func (rp *repairer) recoverAll() ([]RecoveryReport, error) {
	var reports []RecoveryReport
	err := eachContainerDir(rp.root, func(dir string, files []os.DirEntry) {
		for _, f := range files {
			if name, ok := strings.CutSuffix(f.Name(), PartialSuffix); ok && strings.HasSuffix(name, DataSuffix) {
				r := rp.recoverFile(dir, name)
				rp.logReport(r)
				reports = append(reports, r)
			}
		}
	})
	if err != nil {
		return reports, fmt.Errorf("segment: recover: %w", err)
	}
	return reports, nil
}

func (rp *repairer) logReport(r RecoveryReport) {
	switch {
	case r.Quarantined:
		rp.log.Error("segment quarantined", "path", r.Path, "kept_records", r.Records, "err", r.Err)
	case r.Err != nil:
		rp.log.Error("segment recovery failed", "path", r.Path, "err", r.Err)
	case r.Sealed != nil:
		rp.log.Info("segment recovered", "path", r.Path, "records", r.Records, "bytes", r.Bytes, "torn_bytes", r.TornBytes, "cut", r.Cut)
	default:
		rp.log.Info("empty in-progress segment removed", "path", r.Path, "torn_bytes", r.TornBytes)
	}
}

// recoverFile repairs dir/name.partial. See Recover.
func (rp *repairer) recoverFile(dir, name string) RecoveryReport {
	partial := filepath.Join(dir, name+PartialSuffix)
	metaPath := filepath.Join(dir, name+MetaSuffix)
	rep := RecoveryReport{Path: partial}
	m, err := readMeta(metaPath)
	if err != nil {
		rep.Err = err
		if !errors.Is(err, ErrBadMeta) && !errors.Is(err, fs.ErrNotExist) {
			return rep // cannot read it now; the next start tries again
		}
		rep.Quarantined = true
		if qerr := quarantine(rp.root, dir, rp.now(), name+PartialSuffix, name+MetaSuffix); qerr != nil {
			rep.Err = errors.Join(err, qerr)
		}
		rp.acct.dirIdle(dir)
		return rep
	}
	if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
		// A previous recovery sealed it and stopped before removing the
		// in-progress file.
		rep.Err = os.Remove(partial)
		return rep
	}
	tmp := filepath.Join(dir, name+recoverSuffix)
	res, err := rp.rewrite(partial, tmp, &m)
	rep.Records, rep.Bytes, rep.TornBytes, rep.Cut = m.Records, m.RawBytes, res.torn, res.cut
	if err != nil {
		os.Remove(tmp)
		rep.Err = err
		return rep
	}
	if res.corrupt != nil {
		rep.Err = res.corrupt
		rep.Quarantined = true
		// Keep the original sidecar beside the quarantined data.
		if b, rerr := os.ReadFile(metaPath); rerr == nil {
			qdir := filepath.Join(rp.root, QuarantineDir, filepath.Base(dir))
			if err := mkdirAllSync(qdir); err == nil {
				err = writeFileAtomic(filepath.Join(qdir, name+MetaSuffix), b)
				if err != nil {
					rep.Err = errors.Join(rep.Err, err)
				}
			}
		}
		if qerr := quarantine(rp.root, dir, rp.now(), name+PartialSuffix); qerr != nil {
			rep.Err = errors.Join(rep.Err, qerr)
		}
	}
	if m.Records == 0 {
		os.Remove(tmp)
		var errs []error
		if !rep.Quarantined {
			if err := os.Remove(partial); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		if err := os.Remove(metaPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		if err := syncRemoval(dir); err != nil {
			errs = append(errs, err)
		}
		rep.Err = errors.Join(append([]error{rep.Err}, errs...)...)
		rp.acct.dirIdle(dir)
		return rep
	}
	if res.lastTime != nil {
		m.LastTime = *res.lastTime
	}
	sealed, err := finishSeal(rp.acct, dir, name, tmp, m, res.size, ReasonRecovered, rp.now())
	if err != nil {
		rep.Err = errors.Join(rep.Err, err)
		return rep
	}
	rep.Sealed = &sealed
	if !rep.Quarantined {
		if err := os.Remove(partial); err != nil && !errors.Is(err, os.ErrNotExist) {
			rep.Err = err
		}
		if err := syncRemoval(dir); err != nil {
			rep.Err = errors.Join(rep.Err, err)
		}
	}
	return rep
}

// rewriteResult describes a rewritten in-progress file.
type rewriteResult struct {
	size     int64
	torn     int64 // decoded bytes of an incomplete last record
	cut      bool  // the zstd data ended inside a block or frame
	corrupt  error // non-nil when the data was corrupt before its end
	lastTime *time.Time
}

// rewrite decodes src, re-encodes every complete record into dst (synced),
// and sets m.Records and m.RawBytes. It returns an error only when dst could
// not be written; a corrupt src is reported in rewriteResult.corrupt.
func (rp *repairer) rewrite(src, dst string, m *Meta) (rewriteResult, error) {
	var res rewriteResult
	m.Records, m.RawBytes = 0, 0
	in, err := os.Open(src)
	if err != nil {
		return res, fmt.Errorf("segment: recover: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return res, fmt.Errorf("segment: recover: %w", err)
	}
	dec, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return res, fmt.Errorf("segment: recover: %w", err)
	}
	defer dec.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, filePerm)
	if err != nil {
		return res, fmt.Errorf("segment: recover: %w", err)
	}
	defer out.Close()
	cw := newCountingWriter(out, nil, true)
	enc, err := newEncoder(zstd.SpeedDefault, cw)
	if err != nil {
		return res, err
	}
	br := bufio.NewReaderSize(dec, 1<<20)
	var line, last []byte
	for {
		chunk, rerr := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxRecoverLine {
			res.corrupt = fmt.Errorf("%w: record longer than %d bytes", ErrCorrupt, maxRecoverLine)
			break
		}
		if errors.Is(rerr, bufio.ErrBufferFull) {
			continue
		}
		if rerr == nil {
			if _, err := enc.Write(line); err != nil {
				return res, fmt.Errorf("segment: recover: %w", err)
			}
			m.Records++
			m.RawBytes += int64(len(line))
			last = append(last[:0], line...)
			line = line[:0]
			continue
		}
		res.torn = int64(len(line))
		switch {
		case errors.Is(rerr, io.EOF):
		case errors.Is(rerr, io.ErrUnexpectedEOF):
			res.cut = true
		default:
			res.corrupt = fmt.Errorf("%w: %w", ErrCorrupt, rerr)
		}
		break
	}
	if err := enc.Close(); err != nil {
		return res, fmt.Errorf("segment: recover: %w", err)
	}
	if err := out.Sync(); err != nil {
		return res, fmt.Errorf("segment: recover: %w", err)
	}
	res.size = cw.size()
	cw.seal(m)
	if m.Records > 0 {
		t := fi.ModTime().UTC()
		if rp.recTime != nil {
			if rt, ok := rp.recTime(last); ok {
				t = rt
			}
		}
		res.lastTime = &t
	}
	return res, nil
}
