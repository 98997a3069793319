package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/s3logs/s3logs/internal/dockerplugin"
)

// labelKey marks every container the harness creates.
const labelKey = "s3logs-bench"

// dockerTimeout bounds one docker CLI call.
const dockerTimeout = 5 * time.Minute

// docker runs the docker CLI and returns its trimmed stdout.
func docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(errb.Bytes()))
	}
	return strings.TrimSpace(out.String()), nil
}

// inspectPlugin returns the installed plugin's state.
func inspectPlugin(name string) (dockerplugin.Plugin, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	return dockerplugin.Inspect(ctx, name)
}

// setPlugin disables the plugin (it must be unused), applies the settings
// and enables it.
func setPlugin(name string, settings ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	return dockerplugin.Set(ctx, name, settings...)
}

// removeLabeled removes every container carrying the harness label.
func removeLabeled() error {
	out, err := docker("ps", "-aq", "--filter", "label="+labelKey)
	if err != nil || out == "" {
		return err
	}
	ids := strings.Fields(out)
	var errs []error
	for i := 0; i < len(ids); i += 50 {
		if _, err := docker(append([]string{"rm", "-f"}, ids[i:min(i+50, len(ids))]...)...); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// parallel runs f(0..n-1) with at most width at once and returns the first
// error.
func parallel(n, width int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, width)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
