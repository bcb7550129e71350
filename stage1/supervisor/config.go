// Package supervisor is process 1 of a pod (default flavor): it starts one
// stage2 launcher per app, reaps every process of the pod, records each
// app's exit status, applies the exit policy (onAnyFailure: an app that
// fails stops the pod), forwards SIGTERM/SIGINT to the apps and SIGKILLs
// what is left after a grace period, and reports readiness to the run
// entrypoint (which tells systemd).
package supervisor

import (
	"time"

	"github.com/rkt/rkt/stage2"
)

// ArgvName is the supervisor's argv[0], the dispatch key of the stage1
// binary.
const ArgvName = "rkt-supervisor"

// LauncherArgvName is the stage2 launcher's argv[0].
const LauncherArgvName = "rkt-stage2"

// Descriptors of the supervisor (see the protocol in stage1/default).
const (
	ConfigFd = 3 // run entrypoint -> supervisor: Config as JSON, then EOF
	EventFd  = 4 // supervisor -> run entrypoint: "ready\n" once
	ExeFd    = 5 // the stage1 binary the supervisor runs from
)

// Descriptors of a launcher.
const (
	LaunchConfigFd = 3 // supervisor -> launcher: stage2.App as JSON, then EOF
	LaunchStatusFd = 4 // launcher -> supervisor: "<code> <message>\n" on failure; EOF at exec
)

// Config is what the run entrypoint sends the supervisor.
type Config struct {
	UUID        string `json:"uuid"`
	PodDir      string `json:"podDir"`
	Hostname    string `json:"hostname"`
	NetNone     bool   `json:"netNone,omitempty"`
	Interactive bool   `json:"interactive,omitempty"`
	Debug       bool   `json:"debug,omitempty"`
	// Epoch is the run entrypoint's start (Unix nanoseconds), the origin
	// of the debug timestamps.
	Epoch int64 `json:"epoch,omitempty"`
	// GracePeriod is how long apps get between SIGTERM and SIGKILL when
	// the pod stops.
	GracePeriod time.Duration `json:"gracePeriod"`
	// ReadyLink is the supervisor-status symlink, made ("ready") once
	// every app runs.
	ReadyLink string `json:"readyLink"`
	// Cgroups are the supervisor's cgroup v1 directories (the pod's
	// stage1 leaf), joined in the background; the run entrypoint starts
	// it directly in its cgroup v2 leaf.
	Cgroups []string `json:"cgroups,omitempty"`
	Apps    []App    `json:"apps"`
}

// App is one app to start.
type App struct {
	Launch stage2.App `json:"launch"`
	// SupportsNotify: the pod is ready only once this app sent READY=1
	// to the NOTIFY_SOCKET it gets.
	SupportsNotify bool `json:"supportsNotify,omitempty"`
	// StatusFile, StartedFile: absolute paths of the app's exit status
	// file and start marker.
	StatusFile  string `json:"statusFile"`
	StartedFile string `json:"startedFile"`
}
