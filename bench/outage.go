package main

import (
	"fmt"
	"time"
)

// outageResult is the S3-outage part: one container at full speed through
// s3logs, alternately with S3 up and with MinIO stopped.
type outageResult struct {
	Workload benchWorkload
	Pairs    []outagePair
}

// outagePair is one run with S3 up and the run with MinIO stopped after it.
type outagePair struct {
	Up, Down runResult
	// CatchUp is the seconds from MinIO's restart until every record of
	// the down run was in S3 (upload backoff included).
	CatchUp float64
}

// ratios returns each pair's down/up wall-time ratio.
func (o *outageResult) ratios() []float64 {
	var rs []float64
	for _, p := range o.Pairs {
		rs = append(rs, p.Down.Wall/p.Up.Wall)
	}
	return rs
}

// outage measures how much slower a container runs while S3 is down than
// with S3 up, in runs pairs measured in this session: a run with S3 up (its
// records awaited in S3), then MinIO stopped, a run whose segments wait in
// the spool, MinIO started again, and the wait until they are all uploaded,
// so the next pair starts with an empty spool.
func (h *harness) outage(wl benchWorkload, runs int) (*outageResult, error) {
	res := &outageResult{Workload: wl}
	down := h.s3logs
	down.Name, down.S3Down = "s3logs, S3 down", true
	for i := 0; i < runs; i++ {
		up, err := h.runOne(h.s3logs, wl, cacheOff)
		if err != nil {
			return res, fmt.Errorf("outage run %d, S3 up: %w", i+1, err)
		}
		h.minio.Stop()
		d, err := h.runOne(down, wl, cacheOff)
		restartErr := h.minio.Restart()
		if err != nil {
			return res, fmt.Errorf("outage run %d, S3 down: %w", i+1, err)
		}
		if restartErr != nil {
			return res, restartErr
		}
		back := time.Now()
		var keys []string
		for _, name := range d.Names {
			st, err := h.store.waitRecords(name+"/", int64(wl.Lines), 5*time.Minute)
			if err != nil {
				return res, fmt.Errorf("outage run %d, after S3 came back: %w", i+1, err)
			}
			if st.Records != int64(wl.Lines) {
				return res, fmt.Errorf("%s: %d records in S3 after the outage, want %d", name, st.Records, wl.Lines)
			}
			keys = append(keys, st.Keys...)
		}
		p := outagePair{Up: up, Down: d, CatchUp: time.Since(back).Seconds()}
		if err := h.store.deleteKeys(keys); err != nil {
			h.logf("warning: deleting objects: %v", err)
		}
		h.logf("  outage %s run %d/%d: S3 up %6.2f s, down %6.2f s, ratio %.3f; in S3 %.1f s after MinIO restarted",
			wl.Name, i+1, runs, up.Wall, d.Wall, d.Wall/up.Wall, p.CatchUp)
		res.Pairs = append(res.Pairs, p)
	}
	return res, nil
}
