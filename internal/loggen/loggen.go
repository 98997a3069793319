package loggen

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"time"
)

// Mode selects what a generator writes.
type Mode string

// The generator modes.
const (
	// ModeLines writes Lines short numbered lines to stdout.
	ModeLines Mode = "lines"
	// ModeInterleave writes Lines short numbered lines, every third one to
	// stderr and the others to stdout.
	ModeInterleave Mode = "interleave"
	// ModeBig writes Lines lines of exactly Size bytes (newline excluded) to stdout.
	ModeBig Mode = "big"
	// ModeUTF8 writes Lines lines to stdout cycling through TortureLines:
	// quotes, backslashes, tabs, carriage returns, escape sequences, emoji,
	// HTML metacharacters, all valid UTF-8.
	ModeUTF8 Mode = "utf8"
	// ModeInvalidUTF8 writes Lines lines to stdout cycling through
	// InvalidLines, each of which holds bytes that are not valid UTF-8.
	ModeInvalidUTF8 Mode = "invalid-utf8"
	// ModeNoTrail writes Lines lines to stdout; the last one has no newline.
	ModeNoTrail Mode = "notrail"
	// ModeBulk writes Lines lines of Size bytes (newline excluded) of
	// pseudo-random, poorly compressible text to stdout.
	ModeBulk Mode = "bulk"
	// ModeSeq writes what `seq 1 Lines` prints to stdout: line i is the
	// decimal number i+1. Tag and Run do not change it. The benchmarks'
	// "short" workload.
	ModeSeq Mode = "seq"
	// ModeJSON writes JSON application logs of 1000 to 1100 bytes to stdout
	// (a request record with ids, HTTP and SQL details and a cart; about a
	// third of the bytes random, the rest repeating as in real request
	// logs). Tag and Run do not change them. The benchmarks' "json" workload.
	ModeJSON Mode = "json"
)

// Stream is the output a write goes to.
type Stream string

// The two container streams, named as Docker names them.
const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// Write is one line of a sequence, its newline included, and the stream it
// goes to.
type Write struct {
	Stream Stream
	Data   []byte
}

// ErrInvalidSpec is returned (wrapped) by Spec.Validate.
var ErrInvalidSpec = errors.New("loggen: invalid spec")

// Defaults applied by ParseFlags and by cmd/loggen.
const (
	// DefaultLines is the default number of lines.
	DefaultLines = 1000
	// DefaultSize is the default line size of ModeBig and ModeBulk.
	DefaultSize = 200
	// MaxSize bounds Size and Buffer (16 MiB) so a typo cannot exhaust memory.
	MaxSize = 16 << 20
)

// Spec is everything that determines a generator's output, plus how the
// lines are written (Rate, Duration, Buffer) and what cmd/loggen does
// around them (Sleep, Burst, CountFile, Report), none of which changes the
// bytes, only how many of them are written and in how many write calls.
type Spec struct {
	// Mode selects the content; see the Mode constants.
	Mode Mode
	// Lines is the number of lines in the sequence; must be >= 1.
	Lines int
	// Size is the line length for ModeBig and ModeBulk, newline excluded.
	Size int
	// Tag is included in every line so concurrent containers differ.
	Tag string
	// Run is the run number included in every line (cmd/loggen sets it from
	// its counter file so a restarted container writes different lines).
	// Zero means 1.
	Run int

	// Rate limits cmd/loggen to this many lines per second; 0 is unlimited.
	Rate float64
	// Duration stops cmd/loggen after this long even if lines remain; 0 is no limit.
	Duration time.Duration
	// Buffer, at full speed (Rate 0), gathers consecutive lines of one
	// stream into write calls of at most Buffer bytes, as a C program's
	// stdio does on a pipe; a longer line is written alone. 0 writes every
	// line with its own call. At most MaxSize.
	Buffer int
	// Sleep makes cmd/loggen wait for SIGTERM/SIGINT after its last line
	// instead of exiting.
	Sleep bool
	// Burst, with Sleep, makes cmd/loggen write Burst more lines of the
	// sequence (lines Lines, Lines+1, ...) at full speed each time it gets
	// SIGUSR1; 0 leaves SIGUSR1 to its default action. Not with ModeNoTrail.
	Burst int
	// CountFile, when set, is a file inside the container holding the number
	// of earlier runs; cmd/loggen increments it at start and uses it as Run.
	CountFile string
	// Report, when set, is a file cmd/loggen writes the number of lines
	// written to ("N\n") when it stops writing, so a test that stopped it
	// early knows exactly which prefix of the sequence was written.
	Report string
}

// Validate reports whether s describes a sequence the generator can write.
func (s Spec) Validate() error {
	switch s.Mode {
	case ModeLines, ModeInterleave, ModeUTF8, ModeInvalidUTF8, ModeNoTrail, ModeSeq, ModeJSON:
	case ModeBig, ModeBulk:
		if s.Size < 1 || s.Size > MaxSize {
			return fmt.Errorf("%w: size %d not in [1, %d]", ErrInvalidSpec, s.Size, MaxSize)
		}
	default:
		return fmt.Errorf("%w: unknown mode %q", ErrInvalidSpec, s.Mode)
	}
	if s.Lines < 1 {
		return fmt.Errorf("%w: lines %d < 1", ErrInvalidSpec, s.Lines)
	}
	if s.Rate < 0 || s.Duration < 0 || s.Run < 0 || s.Burst < 0 {
		return fmt.Errorf("%w: negative rate, duration, run or burst", ErrInvalidSpec)
	}
	if s.Buffer < 0 || s.Buffer > MaxSize {
		return fmt.Errorf("%w: buffer %d not in [0, %d]", ErrInvalidSpec, s.Buffer, MaxSize)
	}
	if s.Burst > 0 && (!s.Sleep || s.Mode == ModeNoTrail) {
		return fmt.Errorf("%w: burst needs sleep and a mode other than %s", ErrInvalidSpec, ModeNoTrail)
	}
	return nil
}

// Args returns the cmd/loggen command-line arguments that reproduce s.
func (s Spec) Args() []string {
	a := []string{
		"-mode", string(s.Mode),
		"-lines", strconv.Itoa(s.Lines),
		"-size", strconv.Itoa(s.Size),
		"-tag", s.Tag,
	}
	if s.Run != 0 {
		a = append(a, "-run", strconv.Itoa(s.Run))
	}
	if s.Rate != 0 {
		a = append(a, "-rate", strconv.FormatFloat(s.Rate, 'g', -1, 64))
	}
	if s.Duration != 0 {
		a = append(a, "-duration", s.Duration.String())
	}
	if s.Buffer != 0 {
		a = append(a, "-buffer", strconv.Itoa(s.Buffer))
	}
	if s.Sleep {
		a = append(a, "-sleep")
	}
	if s.Burst != 0 {
		a = append(a, "-burst", strconv.Itoa(s.Burst))
	}
	if s.CountFile != "" {
		a = append(a, "-count-file", s.CountFile)
	}
	if s.Report != "" {
		a = append(a, "-report", s.Report)
	}
	return a
}

// ParseFlags parses cmd/loggen's arguments (without the program name) into a
// Spec with the defaults applied, and validates it.
func ParseFlags(args []string) (Spec, error) {
	fs := flag.NewFlagSet("loggen", flag.ContinueOnError)
	var s Spec
	mode := fs.String("mode", string(ModeLines), "lines|interleave|big|utf8|invalid-utf8|notrail|bulk|seq|json")
	fs.IntVar(&s.Lines, "lines", DefaultLines, "number of lines")
	fs.IntVar(&s.Size, "size", DefaultSize, "line size in bytes for big and bulk, newline excluded")
	fs.StringVar(&s.Tag, "tag", "", "text included in every line")
	fs.IntVar(&s.Run, "run", 0, "run number included in every line (0 means 1; overridden by -count-file)")
	fs.Float64Var(&s.Rate, "rate", 0, "lines per second, 0 for unlimited")
	fs.DurationVar(&s.Duration, "duration", 0, "stop writing after this long, 0 for no limit")
	fs.IntVar(&s.Buffer, "buffer", 0, "at full speed, gather lines into writes of up to this many bytes; 0 writes each line alone")
	fs.BoolVar(&s.Sleep, "sleep", false, "after the last line wait for SIGTERM instead of exiting")
	fs.IntVar(&s.Burst, "burst", 0, "with -sleep, write this many more lines at full speed on each SIGUSR1")
	fs.StringVar(&s.CountFile, "count-file", "", "file counting runs; its incremented value becomes -run")
	fs.StringVar(&s.Report, "report", "", "file to write the number of lines written to when writing stops")
	if err := fs.Parse(args); err != nil {
		return Spec{}, err
	}
	if fs.NArg() != 0 {
		return Spec{}, fmt.Errorf("%w: unexpected arguments %q", ErrInvalidSpec, fs.Args())
	}
	s.Mode = Mode(*mode)
	return s, s.Validate()
}

func (s Spec) run() int {
	if s.Run == 0 {
		return 1
	}
	return s.Run
}

// TortureLines are the lines of ModeUTF8, newline excluded. They are valid
// UTF-8 and exercise every JSON escape plus multi-byte characters.
var TortureLines = []string{
	`plain ascii`,
	`"double quotes" and 'single quotes' and "unbalanced`,
	`back\slash \\ double \n not-a-newline \u0041 \"`,
	"tab\tseparated\tfields\t",
	"carriage return\rin the middle",
	"crlf ending\r",
	"\x1b[31mred\x1b[0m \x1b[1;32mbold green\x1b[0m \x1b]0;title\x07",
	"emoji 😀 👍🏽 🇩🇪 👩‍👩‍👧 and cjk 日本語 and accents éàü ß",
	`<script>alert("x&y")</script> &amp; &lt; > <`,
	"control \x00 \x01 \x1f \x7f end",
	"json-looking {\"log\":\"x\\n\",\"stream\":\"stderr\"}",
	"unicode separators \u2028 and \u2029 and bom \ufeff",
	"",
	"   leading and trailing spaces   ",
}

// InvalidLines are the lines of ModeInvalidUTF8, newline excluded.
var InvalidLines = []string{
	"lone continuation \x80 byte",
	"truncated sequence \xe2\x82 end",
	"invalid start \xff\xfe bytes",
	"overlong \xc0\xaf slash",
	"surrogate \xed\xa0\x80 half",
}

// Count returns the number of lines in the sequence (Lines).
func (s Spec) Count() int { return s.Lines }

// Write returns line i (0-based) of the sequence and its stream. It panics
// if i is out of range or s is invalid; call Validate first.
func (s Spec) Write(i int) Write {
	st, b := s.Append(nil, i)
	return Write{st, b}
}

// Append appends line i (0-based) of the sequence, its newline included, to
// dst and returns its stream and the extended slice. It panics if i is out
// of range or s is invalid; call Validate first. ModeSeq and ModeJSON
// append without allocating when dst has room.
func (s Spec) Append(dst []byte, i int) (Stream, []byte) {
	if i < 0 || i >= s.Lines {
		panic(fmt.Sprintf("loggen: line %d out of range [0, %d)", i, s.Lines))
	}
	run := s.run()
	switch s.Mode {
	case ModeLines:
		return Stdout, fmt.Appendf(dst, "%s run %d line %07d stdout short line\n", s.Tag, run, i)
	case ModeInterleave:
		if i%3 == 2 {
			return Stderr, fmt.Appendf(dst, "%s run %d line %07d to stderr: error text\n", s.Tag, run, i)
		}
		return Stdout, fmt.Appendf(dst, "%s run %d line %07d to stdout\n", s.Tag, run, i)
	case ModeNoTrail:
		dst = fmt.Appendf(dst, "%s run %d line %07d", s.Tag, run, i)
		if i == s.Lines-1 {
			return Stdout, append(dst, " last, no newline"...)
		}
		return Stdout, append(dst, '\n')
	case ModeUTF8:
		return Stdout, fmt.Appendf(dst, "%s %d %d: %s\n", s.Tag, run, i, TortureLines[i%len(TortureLines)])
	case ModeInvalidUTF8:
		return Stdout, fmt.Appendf(dst, "%s %d %d: %s\n", s.Tag, run, i, InvalidLines[i%len(InvalidLines)])
	case ModeBig:
		start := len(dst)
		return Stdout, fill(fmt.Appendf(dst, "%s run %d big line %d:", s.Tag, run, i), start, s.Size, seed(s.Tag, run, i), bigAlphabet)
	case ModeBulk:
		start := len(dst)
		return Stdout, fill(fmt.Appendf(dst, "%s %d %d ", s.Tag, run, i), start, s.Size, seed(s.Tag, run, i), bulkAlphabet)
	case ModeSeq:
		return Stdout, append(strconv.AppendInt(dst, int64(i)+1, 10), '\n')
	case ModeJSON:
		return Stdout, appendJSON(dst, i)
	}
	panic(fmt.Sprintf("loggen: invalid mode %q", s.Mode))
}

// Expected returns what the first n lines of s put on stdout and stderr.
// n is clamped to [0, s.Count()].
func Expected(s Spec, n int) (stdout, stderr []byte) {
	n = min(max(n, 0), s.Count())
	var line []byte
	for i := range n {
		var st Stream
		st, line = s.Append(line[:0], i)
		if st == Stderr {
			stderr = append(stderr, line...)
		} else {
			stdout = append(stdout, line...)
		}
	}
	return stdout, stderr
}

const (
	// bigAlphabet compresses well: big lines test reassembly, not volume.
	bigAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789 "
	// bulkAlphabet is 64 symbols: random text over it compresses to ~75%.
	bulkAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)

// fill extends the line b[start:] (truncating if longer) to exactly size
// bytes with symbols drawn from alphabet by a splitmix64 stream seeded with
// x, then appends '\n'.
func fill(b []byte, start, size int, x uint64, alphabet string) []byte {
	if len(b)-start > size {
		b = b[:start+size]
	}
	r := rng(x)
	for len(b)-start < size {
		z := r.next()
		for k := 0; k < 8 && len(b)-start < size; k++ {
			b = append(b, alphabet[int(z&0xff)%len(alphabet)])
			z >>= 8
		}
	}
	return append(b, '\n')
}

// seed derives a per-line seed with FNV-1a over tag, run and line index.
func seed(tag string, run, i int) uint64 {
	h := uint64(14695981039346656037)
	mix := func(c byte) { h ^= uint64(c); h *= 1099511628211 }
	for k := 0; k < len(tag); k++ {
		mix(tag[k])
	}
	for _, v := range []int{run, i} {
		for k := range 8 {
			mix(byte(v >> (8 * k)))
		}
	}
	return h
}
