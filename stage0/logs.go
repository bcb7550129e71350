package stage0

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/appc/spec/schema"

	"github.com/rkt/rkt/pkg/appcjson"
	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/pkg/podlog"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// LogOptions select what Logs reads.
type LogOptions struct {
	// App is the one app to read ("": every app of the pod).
	App string
	// Since skips the records written before it (zero: none).
	Since time.Time
	// Follow goes on with what is written later, until the pod has
	// exited and everything was read (or ctx ends).
	Follow bool
	// Poll is how often a followed log is read again (default 100 ms).
	Poll time.Duration
}

// LogLine is one record of an app's log.
type LogLine struct {
	App string
	podlog.Record
}

// PodApps returns the names of the apps of a pod, in its manifest's
// order.
func PodApps(p *pod.Pod) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(p.Path(), stage1abi.PodManifestFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pod %s has no manifest yet (%s): %w", p.UUID, p.State(), pod.ErrBadState)
		}
		return nil, err
	}
	var pm schema.PodManifest
	if err := appcjson.Unmarshal(data, &pm); err != nil {
		return nil, fmt.Errorf("pod %s: its manifest: %w", p.UUID, err)
	}
	var names []string
	for _, a := range pm.Apps {
		names = append(names, a.Name.String())
	}
	return names, nil
}

// Logs reads the apps' output that stage1 kept in the pod directory
// (stage1abi.AppLog: bounded, so the oldest lines may be gone) and calls
// emit with each record, in time order across the apps. A pod whose
// stage1 keeps no logs (or an app that had the terminal) has none.
func Logs(ctx context.Context, p *pod.Pod, opts LogOptions, emit func(LogLine) error) error {
	apps, err := PodApps(p)
	if err != nil {
		return err
	}
	if opts.App != "" {
		found := false
		for _, a := range apps {
			found = found || a == opts.App
		}
		if !found {
			return fmt.Errorf("pod %s has no app %q (its apps: %s): %w", p.UUID, opts.App, strings.Join(apps, ", "), pod.ErrNotFound)
		}
		apps = []string{opts.App}
	}
	dir := filepath.Join(p.Path(), stage1abi.LogsDir)
	readers := make([]*podlog.Reader, len(apps))
	for i, a := range apps {
		readers[i] = podlog.NewReader(dir, a)
		defer readers[i].Close()
	}
	pass := func() error {
		var lines []LogLine
		for i, r := range readers {
			recs, err := r.Next()
			if err != nil {
				return fmt.Errorf("pod %s: app %s: read its log: %w", p.UUID, apps[i], err)
			}
			for _, rec := range recs {
				if opts.Since.IsZero() || !rec.Time.Before(opts.Since) {
					lines = append(lines, LogLine{App: apps[i], Record: rec})
				}
			}
		}
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].Time.Before(lines[j].Time) })
		for _, l := range lines {
			if err := emit(l); err != nil {
				return err
			}
		}
		return nil
	}
	if !opts.Follow || p.State() != pod.StateRunning {
		return pass()
	}
	// The pod's lock is free once its run entrypoint exited, which it
	// does after it wrote the apps' last lines.
	exited := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { exited <- p.WaitExit(wctx) }()
	poll := opts.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case err := <-exited:
			if err != nil && ctx.Err() == nil && !errors.Is(err, pod.ErrNotFound) {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return pass()
		default:
		}
		if err := pass(); err != nil {
			return err
		}
		select {
		case <-t.C:
		case err := <-exited:
			exited <- err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
