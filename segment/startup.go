package segment

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Partial is an in-progress segment file left by an earlier process,
// found by ListPartials and repaired by RecoverPartial.
type Partial struct {
	Dir  string // container folder
	Name string // final data file name (without PartialSuffix)
}

// Container returns the id of the container whose folder holds p.
func (p Partial) Container() string { return filepath.Base(p.Dir) }

// ListPartials lists the in-progress files in the spool: the leftovers of
// an earlier process, as long as no Writer of this Spool has appended yet.
// Listing is cheap (one folder read per container); repairing them can be
// slow, so a plugin lists them before it serves new streams and repairs
// them with RecoverPartial in the background, while new Writers, which
// always take higher sequence numbers, write beside them.
func (s *Spool) ListPartials() ([]Partial, error) {
	var out []Partial
	err := eachContainerDir(s.root, func(dir string, files []os.DirEntry) {
		for _, f := range files {
			if name, ok := strings.CutSuffix(f.Name(), PartialSuffix); ok && strings.HasSuffix(name, DataSuffix) {
				out = append(out, Partial{Dir: dir, Name: name})
			}
		}
	})
	if err != nil {
		return out, fmt.Errorf("segment: list in-progress files: %w", err)
	}
	return out, nil
}

// RecoverPartial repairs one file listed by ListPartials, as Recover does
// for every file, logs the outcome and returns its report. It is safe to
// call while Writers append to the same container folder, since they never
// touch a file listed before they started.
func (s *Spool) RecoverPartial(p Partial) RecoveryReport {
	r := s.recoverFile(p.Dir, p.Name)
	s.logReport(r)
	return r
}
