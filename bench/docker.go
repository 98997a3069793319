package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
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

// pluginSettings is the part of `docker plugin inspect` the harness changes.
type pluginSettings struct {
	Enabled  bool
	Settings struct {
		Env    []string
		Mounts []struct {
			Name   string
			Source string
		}
	}
}

func inspectPlugin(name string) (pluginSettings, error) {
	out, err := docker("plugin", "inspect", name)
	if err != nil {
		return pluginSettings{}, err
	}
	var all []pluginSettings
	if err := json.Unmarshal([]byte(out), &all); err != nil || len(all) != 1 {
		return pluginSettings{}, fmt.Errorf("plugin inspect %s: %d results, %v", name, len(all), err)
	}
	return all[0], nil
}

// setPlugin disables the plugin (it must be unused), applies the settings
// and enables it.
func setPlugin(name string, settings ...string) error {
	p, err := inspectPlugin(name)
	if err != nil {
		return err
	}
	if p.Enabled {
		if _, err := docker("plugin", "disable", "--force", name); err != nil {
			return err
		}
	}
	if _, err := docker(append([]string{"plugin", "set", name}, settings...)...); err != nil {
		return err
	}
	_, err = docker("plugin", "enable", name)
	return err
}

// savedSettings returns the settings of the plugin that configurePlugin
// changes, for restoring them later.
func savedSettings(p pluginSettings, envKeys []string, mount string) []string {
	var restore []string
	for _, kv := range p.Settings.Env {
		k, _, _ := strings.Cut(kv, "=")
		for _, want := range envKeys {
			if k == want {
				restore = append(restore, kv)
			}
		}
	}
	for _, m := range p.Settings.Mounts {
		if m.Name == mount {
			restore = append(restore, mount+".source="+m.Source)
		}
	}
	return restore
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
