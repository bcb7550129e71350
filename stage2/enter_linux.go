package stage2

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The enter protocol (`rkt enter`, default flavor). The stage1 enter
// entrypoint (stage1/enter) runs on the host from the stage1 image's
// tree, which the pod must never reach; so it does not run the command
// itself. It joins the app's IPC, UTS, network, cgroup and PID namespaces
// on one locked thread and, from that thread, starts the pod's launcher
// binary (this package's EnterMain) through the read-only bind of it in
// the pod's mount namespace, right in the app's cgroups:
//
//	stage1 enter (host, non-dumpable)        launcher as rkt-stage2-enter
//	  │ fork+exec /proc/self/fd/5 ──────────▶ (a new process of the pod's
//	  │   fds: 0-2 stdio, 3 config (read),    PID namespace; non-dumpable)
//	  │   4 the app's mount namespace, 5 the  │
//	  │   launcher (read-only mount); in the  │
//	  │   app's cgroup v2 directory           │
//	  │ moves it into the app's other cgroups │
//	  ├── fd 3: EnterConfig (JSON), EOF ─────▶│ setns(fd 4): the app's mounts
//	  │                                       │ and root; user from the app's
//	  │                                       │ /etc/passwd; the command in
//	  │                                       │ the app's PATH; bounding set,
//	  │                                       │ user, no_new_privs, seccomp
//	  │◀── stderr, exit 254/127/126 ──────────┤ on failure
//	  │                                       │ exec CMD (which inherits it all)
//	  │ forwards SIGTERM/SIGHUP; waits ──────▶│
//	  ▼ exits with CMD's code
//
// The launcher's executable is its read-only bind, so nothing in the pod
// can open it for writing through /proc/PID/exe (CVE-2019-5736); the host
// process is in none of the pod's PID namespace, and not dumpable.
const (
	// EnterArgvName is the launcher's argv[0] in enter mode.
	EnterArgvName = "rkt-stage2-enter"
	// EnterConfigFd: stage1 enter -> launcher: the EnterConfig (JSON),
	// then EOF.
	EnterConfigFd = 3
	// EnterMountNsFd is the app's mount namespace (/proc/PID/ns/mnt).
	EnterMountNsFd = 4
	// EnterExeFd is the launcher binary itself, which the launcher was
	// exec'd through; it closes it first thing.
	EnterExeFd = 5
)

// EnterConfig is what a command run by `rkt enter` gets of its app: the
// app's user, environment and privileges. stage1 writes it per app when
// the pod starts (podcfg.AppEnter, without Exec).
type EnterConfig struct {
	// App is the app's name, for messages.
	App string `json:"app"`
	// Exec is the command line; Exec[0] is absolute or looked up in the
	// app's PATH.
	Exec []string `json:"exec,omitempty"`
	// User, Group and SupplementaryGIDs are the app's (App.User...),
	// resolved in the app's root.
	User              string `json:"user"`
	Group             string `json:"group"`
	SupplementaryGIDs []int  `json:"supplementaryGIDs,omitempty"`
	// Env is the app's environment.
	Env []string `json:"env"`
	// OOMScoreAdj, Capabilities, NoNewPrivs, Seccomp: as in App.
	OOMScoreAdj  *int     `json:"oomScoreAdj,omitempty"`
	Capabilities []int    `json:"capabilities"`
	NoNewPrivs   bool     `json:"noNewPrivs,omitempty"`
	Seccomp      *Seccomp `json:"seccomp,omitempty"`
}

// EnterConfig returns what a command entered into app a gets (no Exec).
func (a *App) EnterConfig() *EnterConfig {
	return &EnterConfig{
		App: a.Name, User: a.User, Group: a.Group, SupplementaryGIDs: a.SupplementaryGIDs,
		Env: a.Env, OOMScoreAdj: a.OOMScoreAdj, Capabilities: a.Capabilities,
		NoNewPrivs: a.NoNewPrivs, Seccomp: a.Seccomp,
	}
}

// EnterMain is the launcher in enter mode: it reads the EnterConfig from
// cfg, joins the mount namespace mntns and execs the command with the
// app's privileges (see the protocol above). It must run on a locked OS
// thread. It returns only on failure, with the exit code, after printing
// why on stderr.
func EnterMain(ctx context.Context, cfg, mntns *os.File) int {
	var e EnterConfig
	err := json.NewDecoder(cfg).Decode(&e)
	cfg.Close()
	if err != nil {
		err = setupErr("read the configuration from stage1 enter: %w", err)
	} else {
		err = enter(ctx, &e, mntns)
	}
	code := ExitSetupFailed
	if se, ok := err.(*SetupError); ok {
		code = se.Code
	}
	fmt.Fprintf(os.Stderr, "stage1 enter: app %s: %v\n", e.App, err)
	return code
}

// enter joins the app's mount namespace on the calling thread and execs
// e.Exec there with the app's privileges.
func enter(ctx context.Context, e *EnterConfig, mntns *os.File) error {
	if len(e.Exec) == 0 {
		return setupErr("no command to run")
	}
	filter, err := e.Seccomp.assemble()
	if err != nil {
		return err
	}
	// Through the host's /proc, before the app's mounts are this
	// thread's.
	if err := setOOMScoreAdj(e.OOMScoreAdj); err != nil {
		return err
	}
	// setns(CLONE_NEWNS) needs a thread that shares its root and working
	// directory with no other: this one, locked, which then execs.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return setupErr("unshare the file system attributes: %w", err)
	}
	if err := unix.Setns(int(mntns.Fd()), unix.CLONE_NEWNS); err != nil {
		return setupErr("join the app's mount namespace: %w", err)
	}
	mntns.Close()
	// From here on paths are the app's: its root, its /etc/passwd, its
	// PATH.
	id, err := ResolveIdentity(e.User, e.Group)
	if err != nil {
		return setupErr("%w", err)
	}
	env := completeEnv(e.Env, id)
	path, err := lookPath(e.Exec[0], env)
	if err != nil {
		return err
	}
	if err := checkExecutable(path); err != nil {
		return err
	}
	p := privileges{caps: e.Capabilities, id: id, groups: e.SupplementaryGIDs, noNewPrivs: e.NoNewPrivs, filter: filter}
	return p.exec(ctx, "/", path, e.Exec, env, func(string) {})
}
