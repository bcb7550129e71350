// Package podcfg is stage1's side of the pod directory (docs/stage1-abi.md):
// the paths stage0 and stage1 share, the options of the run entrypoint, and
// the translation of the pod manifest (apps, isolators, volumes) into what
// the supervisor and the stage2 launcher execute.
package podcfg

import "path/filepath"

// Files and directories of a pod directory, relative to it.
const (
	PodManifestFile  = "pod"
	PidFile          = "pid"
	SubcgroupFile    = "subcgroup"
	AppsInfoDir      = "appsinfo"
	Stage1RootfsDir  = "stage1/rootfs"
	SharedVolumesDir = "sharedVolumes"
	OverlayDir       = "overlay"
	// RktDir is stage1's state inside the stage1 rootfs.
	RktDir           = Stage1RootfsDir + "/rkt"
	StatusDir        = RktDir + "/status"
	AppPidDir        = RktDir + "/app-pid"
	EnvDir           = RktDir + "/env"
	SupervisorStatus = RktDir + "/supervisor-status"
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

// AppEnv returns the app's environment file, relative to the pod dir.
func AppEnv(app string) string { return filepath.Join(EnvDir, app) }

// AppEnter returns the app's enter configuration file, relative to the
// pod dir.
func AppEnter(app string) string { return filepath.Join(EnterDir, app) }

// AppUpper and AppWork return the app's overlay directories.
func AppUpper(app string) string { return filepath.Join(OverlayDir, app, "upper") }

// AppWork is the app's overlay work directory.
func AppWork(app string) string { return filepath.Join(OverlayDir, app, "work") }

// AppManifest and AppLowerDirs are the files stage0 writes per app.
func AppManifest(app string) string { return filepath.Join(AppsInfoDir, app, "manifest") }

// AppLowerDirs lists the app's overlay lower directories.
func AppLowerDirs(app string) string { return filepath.Join(AppsInfoDir, app, "lowerdirs") }
