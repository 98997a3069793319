// Package dockerplugin reads and changes the settings of an installed Docker
// managed plugin with the docker CLI. The end-to-end tests and the benchmark
// harness use it to point the s3logs plugin at their own MinIO and spool,
// and to put the earlier settings back at the end.
//
// A setting is written as `docker plugin set` takes it: NAME=VALUE for an
// environment variable, MOUNT.source=PATH for a mount's source folder.
package dockerplugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// Plugin is the part of `docker plugin inspect` the harnesses read.
type Plugin struct {
	// ID is the plugin's full id.
	ID string `json:"Id"`
	// Enabled reports whether the plugin runs.
	Enabled bool
	// Config holds what the plugin's config.json declares.
	Config struct {
		// Env lists the declared environment variables and their defaults.
		Env []struct{ Name, Value string }
	}
	// Settings holds the current values.
	Settings struct {
		// Env holds NAME=VALUE of every environment variable.
		Env []string
		// Mounts lists the mounts with their current source folders.
		Mounts []Mount
	}
}

// Mount is a plugin mount and its current source folder.
type Mount struct{ Name, Source string }

// Inspect returns the plugin's state as `docker plugin inspect name` shows it.
func Inspect(ctx context.Context, name string) (Plugin, error) {
	out, err := docker(ctx, "plugin", "inspect", name)
	if err != nil {
		return Plugin{}, err
	}
	var all []Plugin
	if err := json.Unmarshal(out, &all); err != nil || len(all) != 1 {
		return Plugin{}, fmt.Errorf("docker plugin inspect %s: %d results, %v", name, len(all), err)
	}
	return all[0], nil
}

// Set disables the plugin if it is enabled (with --force: its users must
// be gone), applies the settings and enables it. An error names the
// settings without their values, which may be credentials.
func Set(ctx context.Context, name string, settings ...string) error {
	p, err := Inspect(ctx, name)
	if err != nil {
		return err
	}
	if p.Enabled {
		if _, err := docker(ctx, "plugin", "disable", "--force", name); err != nil {
			return err
		}
	}
	if _, err := docker(ctx, append([]string{"plugin", "set", name}, settings...)...); err != nil {
		keys := make([]string, len(settings))
		for i, kv := range settings {
			keys[i], _, _ = strings.Cut(kv, "=")
		}
		return fmt.Errorf("setting %s: %w", strings.Join(keys, ", "), err)
	}
	_, err = docker(ctx, "plugin", "enable", name)
	return err
}

// Saved returns the current values of the named settings (NAME for an
// environment variable, MOUNT.source for a mount) as settings for Set, to
// restore them later. Names the plugin has no value for are left out.
func (p Plugin) Saved(names ...string) []string {
	var out []string
	for _, kv := range p.Settings.Env {
		if k, _, _ := strings.Cut(kv, "="); slices.Contains(names, k) {
			out = append(out, kv)
		}
	}
	for _, m := range p.Settings.Mounts {
		if slices.Contains(names, m.Name+".source") {
			out = append(out, m.Name+".source="+m.Source)
		}
	}
	return out
}

// Has reports whether the plugin is enabled with every one of settings.
func (p Plugin) Has(settings []string) bool {
	if !p.Enabled {
		return false
	}
	for _, kv := range settings {
		k, v, _ := strings.Cut(kv, "=")
		if mount, ok := strings.CutSuffix(k, ".source"); ok {
			if !slices.Contains(p.Settings.Mounts, Mount{mount, v}) {
				return false
			}
			continue
		}
		if !slices.Contains(p.Settings.Env, kv) {
			return false
		}
	}
	return true
}

// Declares reports whether the plugin's config declares the environment
// variable name, so that Set can change it.
func (p Plugin) Declares(name string) bool {
	return slices.ContainsFunc(p.Config.Env, func(e struct{ Name, Value string }) bool { return e.Name == name })
}

// docker runs the docker CLI and returns its stdout; an error carries its
// stderr and the first three arguments (never the values of a set).
func docker(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("docker %s: %w: %s", strings.Join(args[:min(len(args), 3)], " "), err, bytes.TrimSpace(errb.Bytes()))
	}
	return out.Bytes(), nil
}
