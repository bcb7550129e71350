// Package stage2 starts one app of a pod: the launcher that stage1's
// supervisor runs (the stage1 image's /stage2 binary, in a new mount
// namespace) turns an App into the app's process. It joins the app's
// cgroups, mounts the app's root (overlayfs over the image's tree) with
// /proc, /sys, a minimal /dev, /etc/hosts, /etc/resolv.conf and the
// volumes (nodev, nosuid), masks sensitive /proc and /sys paths, pivots
// into the root, resolves the user from the image's /etc/passwd and
// /etc/group, drops capabilities, marks every descriptor above stderr
// close-on-exec, sets no_new_privs, loads the seccomp filter and execs the
// app. Exec failures are explained (missing binary, missing #! or ELF
// interpreter, not executable). Run by the enter entrypoint instead, it
// runs a command in a running app with the app's privileges (EnterMain).
package stage2

import (
	"fmt"

	"github.com/rkt/rkt/pkg/stage1abi"
)

// Exit codes of a launcher that could not start its app.
const (
	// ExitNotFound: the executable or its interpreter does not exist.
	ExitNotFound = 127
	// ExitNotExecutable: the executable exists but cannot be run.
	ExitNotExecutable = 126
	// ExitSetupFailed: the app's environment could not be set up (mounts,
	// user not found, cgroups...).
	ExitSetupFailed = stage1abi.ExitFailure
)

// App is everything the launcher needs to start one app. stage1 fills it
// from the pod manifest and sends it to the launcher as JSON.
type App struct {
	// Name is the app's name in the pod.
	Name string `json:"name"`
	// Root is where the app's root is mounted, an absolute path in the
	// supervisor's mount namespace
	// (<pod>/stage1/rootfs/opt/stage2/<app>/rootfs).
	Root string `json:"root"`
	// LowerDirs are the overlayfs lower directories, upper-most first.
	LowerDirs []string `json:"lowerDirs"`
	// UpperDir and WorkDir are the app's writable layer.
	UpperDir string `json:"upperDir"`
	WorkDir  string `json:"workDir"`
	// AppPidFile receives the app's host PID (for enter).
	AppPidFile string `json:"appPidFile,omitempty"`

	// Exec is the command line; Exec[0] is absolute or looked up in PATH.
	Exec []string `json:"exec"`
	// Handler, when set, says that Exec is the app's event handler of
	// that name ("pre-start", "post-stop"), run like the app: it names
	// the handler in the launcher's messages.
	Handler string `json:"handler,omitempty"`
	// User and Group are appc user and group strings: a number, a name in
	// the image's /etc/passwd or /etc/group, or a path whose owner to use.
	User  string `json:"user"`
	Group string `json:"group"`
	// SupplementaryGIDs are added as is.
	SupplementaryGIDs []int `json:"supplementaryGIDs,omitempty"`
	// WorkingDir is the app's working directory ("" is /); it is created
	// if missing.
	WorkingDir string `json:"workingDir,omitempty"`
	// Env is the environment (K=V); HOME, USER and LOGNAME are added from
	// /etc/passwd when missing.
	Env []string `json:"env"`
	// ReadOnlyRootFS makes the app's root read-only.
	ReadOnlyRootFS bool `json:"readOnlyRootFS,omitempty"`

	// HostsFile and ResolvConf, when set, are host files bind-mounted
	// read-only on /etc/hosts and /etc/resolv.conf.
	HostsFile  string `json:"hostsFile,omitempty"`
	ResolvConf string `json:"resolvConf,omitempty"`
	// NetResolvConf is the resolv.conf made from the DNS settings the
	// pod's networks returned; it replaces ResolvConf when the start line
	// says so ("start resolv"), as it exists only once the networks are
	// set up, while the launcher is already preparing the app.
	NetResolvConf string `json:"netResolvConf,omitempty"`
	// Mounts are the app's volumes.
	Mounts []Mount `json:"mounts,omitempty"`

	// CgroupDirs are the app's cgroups; the launcher joins them (in the
	// background, while it mounts) before it execs the app.
	CgroupDirs []string `json:"cgroupDirs,omitempty"`
	// UnifiedCgroup is the app's cgroup v2 directory: the supervisor
	// starts the launcher right in it (clone3 CLONE_INTO_CGROUP, no
	// migration), or tells the launcher to join it where that fails.
	UnifiedCgroup string `json:"unifiedCgroup,omitempty"`
	// CgroupMounts bind the app's cgroup directories (Source, host paths)
	// read-only at their places in the app (Target, e.g.
	// /sys/fs/cgroup/memory, or /sys/fs/cgroup alone on cgroup v2).
	CgroupMounts []Mount `json:"cgroupMounts,omitempty"`
	// OOMScoreAdj, when set, is written to /proc/self/oom_score_adj.
	OOMScoreAdj *int `json:"oomScoreAdj,omitempty"`
	// Capabilities is the bounding set (capability numbers); nil keeps
	// every capability.
	Capabilities []int `json:"capabilities"`
	// NoNewPrivs sets the no_new_privs bit.
	NoNewPrivs bool `json:"noNewPrivs,omitempty"`
	// Seccomp is the filter; nil means none.
	Seccomp *Seccomp `json:"seccomp,omitempty"`
	// MaskPaths masks and write-protects sensitive /proc and /sys paths
	// and mounts /sys read-only.
	MaskPaths bool `json:"maskPaths,omitempty"`
	// DebugEpoch, when not zero, makes the launcher print its phases to
	// stderr with the time since this instant (Unix nanoseconds; the run
	// entrypoint's start).
	DebugEpoch int64 `json:"debugEpoch,omitempty"`
	// NewSession puts the app in a session of its own (stage1 sets it for
	// every app).
	NewSession bool `json:"newSession,omitempty"`
	// Terminal gives the app a pseudo-terminal of its own devpts instance
	// as stdin, stdout, stderr and controlling terminal; its master goes
	// to the host-side process (supervisor.LaunchTerminalFd), which
	// relays it to the operator's terminal (--interactive).
	Terminal bool `json:"terminal,omitempty"`
	// ListenFds is the number of sockets of socket activation the app
	// gets as descriptors 3, 4, ... (LISTEN_FDS): the launcher has them
	// there (supervisor.LaunchListenFdsEnv says how many), leaves them
	// open for the app, and sets LISTEN_FDS, LISTEN_PID (the app's pid
	// in the pod) and LISTEN_FDNAMES (ListenFdNames, if not empty).
	ListenFds     int    `json:"-"`
	ListenFdNames string `json:"listenFdNames,omitempty"`
	// WatchdogUsec, when not empty, is systemd's watchdog interval
	// (WATCHDOG_USEC), passed on to the app with WATCHDOG_PID set to the
	// app's pid in the pod.
	WatchdogUsec string `json:"watchdogUsec,omitempty"`
}

// Seccomp is a seccomp filter (see pkg/seccomp.Filter).
type Seccomp struct {
	Retain              bool     `json:"retain,omitempty"`
	Syscalls            []string `json:"syscalls"`
	Errno               int      `json:"errno,omitempty"`
	BlockNamespaceClone bool     `json:"blockNamespaceClone,omitempty"`
}

// Mount is a bind mount of a host path (a host volume, or the directory
// backing an empty volume) into the app.
type Mount struct {
	// Volume is the volume's name, for messages.
	Volume string `json:"volume"`
	// Source is the host path; Target the path in the app.
	Source string `json:"source"`
	Target string `json:"target"`
	// ReadOnly remounts the bind read-only; Recursive binds the mounts
	// below Source too.
	ReadOnly  bool `json:"readOnly,omitempty"`
	Recursive bool `json:"recursive,omitempty"`
}

// SetupError is a failure of the launcher with the exit code it implies.
type SetupError struct {
	Code int
	Err  error
}

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// setupErr wraps err with ExitSetupFailed.
func setupErr(format string, args ...any) error {
	return &SetupError{Code: ExitSetupFailed, Err: fmt.Errorf(format, args...)}
}
