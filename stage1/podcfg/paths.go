// Package podcfg is stage1's side of the pod directory (docs/stage1-abi.md):
// the paths stage0 and stage1 share, the options of the run entrypoint, and
// the translation of the pod manifest (apps, isolators, volumes) into what
// the supervisor and the stage2 launcher execute.
package podcfg

import "github.com/rkt/rkt/pkg/stage1abi"

// Files and directories of a pod directory, relative to it: the contract's
// (pkg/stage1abi), under the names stage1 has always used.
const (
	PodManifestFile  = stage1abi.PodManifestFile
	PidFile          = stage1abi.PidFile
	SubcgroupFile    = stage1abi.SubcgroupFile
	AppsInfoDir      = stage1abi.AppsInfoDir
	Stage1RootfsDir  = stage1abi.Stage1RootfsDir
	SharedVolumesDir = stage1abi.SharedVolumesDir
	OverlayDir       = stage1abi.OverlayDir
	RktDir           = stage1abi.RktDir
	StatusDir        = stage1abi.StatusDir
	AppPidDir        = stage1abi.AppPidDir
	EnvDir           = stage1abi.EnvDir
	SupervisorStatus = stage1abi.SupervisorStatus
	CgroupsFile      = stage1abi.CgroupsFile
	EnterDir         = stage1abi.EnterDir
	HostsFile        = stage1abi.HostsFile
	StopTimeoutFile  = stage1abi.StopTimeoutFile
	Stage0HostsFile  = stage1abi.Stage0HostsFile
	Stage0ResolvConf = stage1abi.Stage0ResolvConf
)

// The per-app paths of the contract.
var (
	AppRoot      = stage1abi.AppRoot
	AppStatus    = stage1abi.AppStatus
	AppStarted   = stage1abi.AppStarted
	AppPid       = stage1abi.AppPid
	AppEnv       = stage1abi.AppEnv
	AppEnter     = stage1abi.AppEnter
	AppUpper     = stage1abi.AppUpper
	AppWork      = stage1abi.AppWork
	AppManifest  = stage1abi.AppManifest
	AppLowerDirs = stage1abi.AppLowerDirs
)
