package main

import (
	"fmt"
	"time"

	"github.com/s3logs/s3logs/internal/loggen"
)

// procSample is the plugin's memory and descriptors at one moment.
type procSample struct {
	RSS, HWM int64
	FDs      int
	Threads  int
}

func sample(pid int) (procSample, error) {
	st, err := readStatus(pid)
	if err != nil {
		return procSample{}, err
	}
	fds, err := openFDs(pid)
	return procSample{RSS: st.RSS, HWM: st.HWM, FDs: fds, Threads: st.Threads}, err
}

// scaleResult is the scale part's measurements of the s3logs plugin.
type scaleResult struct {
	Idle, Busy, ShortLived int

	Base        procSample    // no container
	IdleSample  procSample    // Idle containers, all quiet
	LoggingPeak int64         // VmHWM while they logged one line a second
	IdleSettled procSample    // after Settle more
	Settle      time.Duration // extra idle time before IdleSettled
	StartSecs   float64       // starting the idle containers
	BusyPeak    int64         // VmHWM while Busy containers log at full speed
	BusySecs    float64       // from the signal until the plugin is quiet
	BusyLines   int           // lines per busy container
	BusyCPU     float64       // plugin CPU-seconds of the burst
	AfterIdle   procSample    // idle containers removed

	ShortWarm   int        // short-lived containers run before ShortBefore
	ShortBefore procSample // after a warm-up batch of short-lived containers
	ShortAfter  procSample // after ShortLived more
	ShortSecs   float64
}

// scale measures the plugin with many containers: idle ones (one line a
// second, then quiet), some of them logging at full speed, then many
// short-lived ones.
func (h *harness) scale(idle, busy, shortLived, burstLines int, settle time.Duration) (*scaleResult, error) {
	res := &scaleResult{Idle: idle, Busy: busy, ShortLived: shortLived, BusyLines: burstLines}
	// A fresh plugin process, so the heap the e2e part grew does not count.
	h.logf("scale: restarting %s for a fresh process", h.s3logs.Driver)
	if err := removeLabeled(); err != nil {
		return nil, err
	}
	if _, err := docker("plugin", "disable", h.s3logs.Driver); err != nil {
		return nil, err
	}
	if _, err := docker("plugin", "enable", h.s3logs.Driver); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	pid, err := pluginPID(h.s3logs.Driver, h.s3logs.Proc)
	if err != nil {
		return nil, err
	}
	if res.Base, err = sample(pid); err != nil {
		return nil, err
	}
	logOpts := []string{"--log-opt", "endpoint=" + h.minio.Endpoint, "--log-opt", "bucket=" + h.store.bucket}
	names := make([]string, idle)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%s-idle-%d", h.runID, i)
	}
	defer func() {
		for i := 0; i < len(names); i += 50 {
			docker(append([]string{"rm", "-f"}, names[i:min(i+50, len(names))]...)...)
		}
	}()
	h.logf("scale: starting %d containers logging one line a second (10 lines), then idle", idle)
	t0 := time.Now()
	err = parallel(idle, 4, func(i int) error {
		args := append([]string{"run", "-d", "--name", names[i], "--label", labelKey + "=" + h.runID,
			"--network", "none", "--log-driver", h.s3logs.Driver}, logOpts...)
		args = append(append(args, h.image), loggen.Spec{Mode: loggen.ModeSeq, Lines: 10, Rate: 1, Buffer: genBuffer, Sleep: true, Burst: burstLines}.Args()...)
		_, err := docker(args...)
		return err
	})
	res.StartSecs = time.Since(t0).Seconds()
	if err != nil {
		return nil, err
	}
	// The last container's tenth line comes 9 s after its start; streams
	// release their encoders 1 s after their last line.
	time.Sleep(15 * time.Second)
	if err := waitQuiet(pid, time.Second, time.Minute); err != nil {
		return nil, err
	}
	if res.IdleSample, err = sample(pid); err != nil {
		return nil, err
	}
	res.LoggingPeak = res.IdleSample.HWM
	h.logf("scale: %d idle streams: RSS %s (base %s, peak %s), %d fds (base %d)", idle, fmtMiB(res.IdleSample.RSS),
		fmtMiB(res.Base.RSS), fmtMiB(res.LoggingPeak), res.IdleSample.FDs, res.Base.FDs)
	if settle > 0 {
		h.logf("scale: waiting %v more (Go returns freed memory lazily)", settle)
		time.Sleep(settle)
		if res.IdleSettled, err = sample(pid); err != nil {
			return nil, err
		}
		res.Settle = settle
		h.logf("scale: after %v idle: RSS %s", settle, fmtMiB(res.IdleSettled.RSS))
	}

	h.logf("scale: %d of them write %d lines each at full speed", busy, burstLines)
	if err := resetPeak(pid); err != nil {
		return nil, err
	}
	cpu0, err := cpuSeconds(pid)
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	if err := parallel(busy, busy, func(i int) error {
		_, err := docker("kill", "-s", "USR1", names[i])
		return err
	}); err != nil {
		return nil, err
	}
	time.Sleep(2 * time.Second)
	if err := waitQuiet(pid, time.Second, 5*time.Minute); err != nil {
		return nil, err
	}
	res.BusySecs = time.Since(t0).Seconds() - 1 // the quiet second
	cpu1, err := cpuSeconds(pid)
	if err != nil {
		return nil, err
	}
	res.BusyCPU = cpu1 - cpu0
	st, err := readStatus(pid)
	if err != nil {
		return nil, err
	}
	res.BusyPeak = st.HWM
	h.logf("scale: burst done in %.1f s, plugin peak RSS %s, %.2f CPU-s", res.BusySecs, fmtMiB(res.BusyPeak), res.BusyCPU)

	for i := 0; i < len(names); i += 50 {
		if _, err := docker(append([]string{"rm", "-f"}, names[i:min(i+50, len(names))]...)...); err != nil {
			return nil, err
		}
	}
	names = nil
	time.Sleep(3 * time.Second)
	if err := waitQuiet(pid, time.Second, 2*time.Minute); err != nil {
		return nil, err
	}
	if res.AfterIdle, err = sample(pid); err != nil {
		return nil, err
	}

	short := func(n int) error {
		return parallel(n, 4, func(i int) error {
			args := append([]string{"run", "--rm", "--label", labelKey + "=" + h.runID,
				"--network", "none", "--log-driver", h.s3logs.Driver}, logOpts...)
			args = append(append(args, h.image), loggen.Spec{Mode: loggen.ModeSeq, Lines: 10, Buffer: genBuffer}.Args()...)
			_, err := docker(args...)
			return err
		})
	}
	warm := min(50, shortLived)
	res.ShortWarm = warm
	h.logf("scale: %d short-lived containers (warm-up), then %d more", warm, shortLived)
	if err := short(warm); err != nil {
		return nil, err
	}
	time.Sleep(3 * time.Second)
	if err := waitQuiet(pid, time.Second, time.Minute); err != nil {
		return nil, err
	}
	if res.ShortBefore, err = sample(pid); err != nil {
		return nil, err
	}
	t0 = time.Now()
	if err := short(shortLived); err != nil {
		return nil, err
	}
	res.ShortSecs = time.Since(t0).Seconds()
	time.Sleep(3 * time.Second)
	if err := waitQuiet(pid, time.Second, time.Minute); err != nil {
		return nil, err
	}
	if res.ShortAfter, err = sample(pid); err != nil {
		return nil, err
	}
	h.logf("scale: short-lived: RSS %s -> %s, fds %d -> %d", fmtMiB(res.ShortBefore.RSS), fmtMiB(res.ShortAfter.RSS), res.ShortBefore.FDs, res.ShortAfter.FDs)
	return res, nil
}

// objectsResult is the object-size check of one steadily logging container.
type objectsResult struct {
	SegmentSize int64
	Seconds     float64
	RateBytes   float64 // bytes per second the container wrote
	Stats       objectStats
}

// objects runs a container writing ~1 MB/s of 1 KiB JSON lines for d with a
// scaled-down segment-size and reports the objects it produced.
func (h *harness) objects(d time.Duration, segSize string, segBytes int64) (*objectsResult, error) {
	name := fmt.Sprintf("bench-%s-objects", h.runID)
	defer docker("rm", "-f", name)
	lines := int(d.Seconds() * 1000)
	h.logf("objects: one container, 1000 JSON lines/s (~1 MB/s) for %v, segment-size=%s", d, segSize)
	t0 := time.Now()
	args := []string{"run", "-d", "--name", name, "--label", labelKey + "=" + h.runID, "--network", "none",
		"--log-driver", h.s3logs.Driver, "--log-opt", "endpoint=" + h.minio.Endpoint, "--log-opt", "bucket=" + h.store.bucket,
		"--log-opt", "segment-size=" + segSize, "--log-opt", "cache-disabled=true", h.image}
	if _, err := docker(append(args, loggen.Spec{Mode: loggen.ModeJSON, Lines: lines, Rate: 1000}.Args()...)...); err != nil {
		return nil, err
	}
	if code, err := docker("wait", name); err != nil || code != "0" {
		return nil, fmt.Errorf("objects container: exit %q, %v", code, err)
	}
	el := time.Since(t0).Seconds()
	st, err := h.store.waitRecords(name+"/", int64(lines), 2*time.Minute)
	if err != nil {
		return nil, err
	}
	return &objectsResult{SegmentSize: segBytes, Seconds: el, RateBytes: float64(st.RawBytes) / el, Stats: st}, nil
}
