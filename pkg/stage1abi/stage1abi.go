// Package stage1abi is the contract between stage0 and stage1
// (docs/stage1-abi.md) in one place: the stage1 image's annotations and
// interface version, the environment stage0 hands over, the exit code of a
// failure, and the files of the pod directory either side writes or reads.
// stage0, the bundled stage1 flavors, the stage2 launcher and the stub
// stage1 of the tests import it, so that a change cannot miss a copy. It is
// a leaf: it imports nothing but path/filepath.
package stage1abi

import "path/filepath"

// The stage1 image's annotations.
const (
	AnnoRun       = "coreos.com/rkt/stage1/run"
	AnnoEnter     = "coreos.com/rkt/stage1/enter"
	AnnoGC        = "coreos.com/rkt/stage1/gc"
	AnnoStop      = "coreos.com/rkt/stage1/stop"
	AnnoInterface = "coreos.com/rkt/stage1/interface-version"
	// AnnoDefaultNet is the --net a stage1 gets when the user gives none
	// (the fly flavor: host); absent, --net is left out and the stage1
	// picks its own default.
	AnnoDefaultNet = "rkt.dev/stage1/default-net"
)

// HandlerTimeoutAnnotation is the pod manifest annotation that sets how
// long an app's pre-start or post-stop event handler may run (a Go
// duration; default 60s) before stage1 kills it. Operators set it with
// rkt's pod annotations; the stage1 flavors read it, and name it when a
// handler times out.
const HandlerTimeoutAnnotation = "rkt.dev/event-handler-timeout"

// InterfaceVersion is the interface version of the bundled stage1 images
// (the value of AnnoInterface); stage0 gates arguments on it.
const InterfaceVersion = 7

// StopTimeoutVersion is the first interface version whose stop
// entrypoint takes --timeout=DUR.
const StopTimeoutVersion = 7

// The environment stage0 gives the run entrypoint.
const (
	// LockFdEnv names the descriptor of the pod's lock, which stage1
	// keeps open (and so locked) for the pod's lifetime.
	LockFdEnv = "RKT_LOCK_FD"
	// TreeLockFdsEnv lists (comma-separated) the descriptors of the shared
	// locks on the pod's image trees, held the same way.
	TreeLockFdsEnv = "RKT_TREE_LOCK_FDS"
	// JournalSocketEnv, for tests, moves the journal's native socket
	// (default /run/systemd/journal/socket) that the run entrypoint sends
	// the apps' output to when rkt's stdout or stderr is the journal
	// ($JOURNAL_STREAM).
	JournalSocketEnv = "RKT_JOURNAL_SOCKET"
)

// App and pod annotations of the pod manifest that stage1 acts on (besides
// the image's appc ones).
const (
	// SocketActivatedAnno ("true" or "false"), an app annotation (pod
	// manifest, else image manifest): the app gets the sockets of socket
	// activation (LISTEN_FDS) rkt run was started with. Without it, the
	// app of a one-app pod gets them and the apps of a larger pod do not.
	SocketActivatedAnno = "rkt.dev/socket-activated"
	// StopTimeoutAnno, a pod annotation (a Go duration, e.g. 30s): how
	// long the apps get between SIGTERM and SIGKILL when the pod stops
	// (rkt run --stop-timeout). Default 10s.
	StopTimeoutAnno = "rkt.dev/stop-grace-period"
)

// MetadataURLEnv is the app's environment variable naming the metadata
// service (http://HOST:PORT/TOKEN), set when the pod was registered.
const MetadataURLEnv = "AC_METADATA_URL"

// ExitFailure is the exit code of a failure of rkt or of a stage1
// entrypoint itself (as opposed to an app's exit code).
const ExitFailure = 254

// Files and directories of a pod directory, relative to it.
const (
	// Written by stage0.
	PodManifestFile      = "pod"
	Stage1ManifestFile   = "stage1/manifest"
	Stage1RootfsPathFile = "stage1/rootfs-path"
	// TreeIDsFile lists the tree IDs of the pod's images, one per line:
	// gc and image gc keep those trees while the pod exists.
	TreeIDsFile = "tree-ids"
	AppsInfoDir = "appsinfo"
	// MDSTokenFile (mode 0600) holds the pod's metadata service token
	// and, on a second line, the service's port, when stage0 registered
	// the pod with the metadata service: stage1 gives the apps
	// AC_METADATA_URL from it.
	MDSTokenFile = "mds-token"

	// Written by stage1.
	PidFile          = "pid"
	SubcgroupFile    = "subcgroup"
	Stage1RootfsDir  = "stage1/rootfs"
	SharedVolumesDir = "sharedVolumes"
	OverlayDir       = "overlay"
	// RktDir is stage1's state inside the stage1 rootfs.
	RktDir           = Stage1RootfsDir + "/rkt"
	StatusDir        = RktDir + "/status"
	AppPidDir        = RktDir + "/app-pid"
	EnvDir           = RktDir + "/env"
	SupervisorStatus = RktDir + "/supervisor-status"
	// LogsDir holds each app's output (pkg/podlog): <app>, rotated to
	// <app>.1.
	LogsDir = RktDir + "/logs"
	// CgroupsFile lists the cgroup directories stage1 created (absolute
	// host paths, one per line, in creation order), for gc. Private to
	// stage1.
	CgroupsFile = RktDir + "/cgroups"
	// EnterDir holds, per app, what rkt enter gives a command entered
	// into it (stage2.EnterConfig, JSON; default flavor). Private to
	// stage1.
	EnterDir = RktDir + "/enter"
	// HostsFile is the /etc/hosts stage1 generates; Stage0HostsFile and
	// Stage0ResolvConf are the ones stage0 may write (--hosts-entry,
	// --dns), used with --dns-conf-mode=hosts=stage0 / resolv=stage0.
	HostsFile        = RktDir + "/hosts"
	Stage0HostsFile  = Stage1RootfsDir + "/etc/rkt-hosts"
	Stage0ResolvConf = Stage1RootfsDir + "/etc/rkt-resolv.conf"
	// StopTimeoutFile holds the grace period (a Go duration) of a stop
	// asked for with a timeout (stop --timeout): the stop entrypoint
	// writes it before the SIGTERM, and the supervisor reads it on the
	// signal, in place of the pod's. Private to stage1.
	StopTimeoutFile = RktDir + "/stop-timeout"
)

// AppRoot returns the app's root mount point, relative to the pod dir.
func AppRoot(app string) string {
	return filepath.Join(Stage1RootfsDir, "opt", "stage2", app, "rootfs")
}

// AppStatus returns the app's exit status file, relative to the pod dir.
func AppStatus(app string) string { return filepath.Join(StatusDir, app) }

// AppStarted returns the app's start marker, relative to the pod dir.
func AppStarted(app string) string { return filepath.Join(StatusDir, app+"-started") }

// AppPid returns the app's pid file, relative to the pod dir.
func AppPid(app string) string { return filepath.Join(AppPidDir, app) }

// AppLog returns the app's log file, relative to the pod dir (rotated to
// AppLog(app)+".1").
func AppLog(app string) string { return filepath.Join(LogsDir, app) }

// AppEnv returns the app's environment file, relative to the pod dir.
func AppEnv(app string) string { return filepath.Join(EnvDir, app) }

// AppEnter returns the app's enter configuration file, relative to the
// pod dir.
func AppEnter(app string) string { return filepath.Join(EnterDir, app) }

// AppUpper is the app's overlay upper directory.
func AppUpper(app string) string { return filepath.Join(OverlayDir, app, "upper") }

// AppWork is the app's overlay work directory.
func AppWork(app string) string { return filepath.Join(OverlayDir, app, "work") }

// AppInfoDir is the directory stage0 writes the app's files in.
func AppInfoDir(app string) string { return filepath.Join(AppsInfoDir, app) }

// AppManifest is the app's image manifest, written by stage0.
func AppManifest(app string) string { return filepath.Join(AppsInfoDir, app, "manifest") }

// AppLowerDirs lists the app's overlay lower directories, written by
// stage0.
func AppLowerDirs(app string) string { return filepath.Join(AppsInfoDir, app, "lowerdirs") }
