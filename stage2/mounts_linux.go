package stage2

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/pkg/ident"
	"github.com/rkt/rkt/pkg/mounts"
)

// Paths masked in every app (unless MaskPaths is off): files get /dev/null
// bound over them, directories an empty read-only tmpfs.
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi",
	"/proc/timer_list", "/proc/timer_stats", "/sys/firmware",
	"/sys/devices/virtual/powercap",
}

// Paths made read-only in every app (unless MaskPaths is off).
var readOnlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// devNodes are the host device nodes bound into the app's /dev.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// inRoot resolves p inside root, following symlinks as if root were "/",
// so that an image cannot point a mount target outside its root.
func inRoot(root, p string) (string, error) {
	r, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return "", fmt.Errorf("resolve %s in the app's root: %w", p, err)
	}
	return r, nil
}

// mountErr describes a failed mount(2).
func mountErr(what, target string, err error) error {
	return setupErr("mount %s on %s: %w", what, target, err)
}

// mkdirIn creates directory p (and its parents) inside root and returns
// its host path.
func mkdirIn(root, p string, mode os.FileMode) (string, error) {
	t, err := inRoot(root, p)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(t, mode); err != nil {
		return "", setupErr("create %s in the app's root: %w", p, err)
	}
	return t, nil
}

// mkfileIn creates an empty file p inside root unless something exists
// there, and returns its host path.
func mkfileIn(root, p string) (string, error) {
	t, err := inRoot(root, p)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(t); err == nil {
		return t, nil
	}
	if err := os.MkdirAll(filepath.Dir(t), 0o755); err != nil {
		return "", setupErr("create the parent of %s in the app's root: %w", p, err)
	}
	f, err := os.OpenFile(t, os.O_CREATE|os.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return "", setupErr("create %s in the app's root: %w", p, err)
	}
	return t, f.Close()
}

// overlayEscape escapes the characters overlayfs treats specially in a
// lowerdir/upperdir option.
func overlayEscape(p string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`).Replace(p)
}

// mountRoot mounts the app's overlay root at a.Root. nodev: device nodes
// in the image (or made by the app) cannot be opened.
func mountRoot(a *App) error {
	if len(a.LowerDirs) == 0 {
		return setupErr("no image layers (appsinfo/%s/lowerdirs is empty)", a.Name)
	}
	low := make([]string, len(a.LowerDirs))
	for i, d := range a.LowerDirs {
		low[i] = overlayEscape(d)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s",
		strings.Join(low, ":"), overlayEscape(a.UpperDir), overlayEscape(a.WorkDir))
	if err := unix.Mount("overlay", a.Root, "overlay", unix.MS_NODEV, opts); err != nil {
		return mountErr("the app's overlay root ("+opts+")", a.Root, err)
	}
	return nil
}

// mountDev makes the app's /dev: a tmpfs holding binds of the host's
// null, zero, full, random, urandom and tty nodes, a private devpts
// instance, /dev/shm, and the usual symlinks. The tmpfs is then made
// nodev, so device nodes created later in it cannot be opened.
func mountDev(root string) error {
	dev, err := mkdirIn(root, "/dev", 0o755)
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return mountErr("tmpfs", dev, err)
	}
	for _, n := range devNodes {
		t := filepath.Join(dev, n)
		f, err := os.OpenFile(t, os.O_CREATE|os.O_WRONLY|unix.O_CLOEXEC, 0o666)
		if err != nil {
			return setupErr("create /dev/%s: %w", n, err)
		}
		f.Close()
		if err := unix.Mount("/dev/"+n, t, "", unix.MS_BIND, ""); err != nil {
			return mountErr("/dev/"+n, t, err)
		}
	}
	for _, d := range []string{"pts", "shm"} {
		if err := os.Mkdir(filepath.Join(dev, d), 0o755); err != nil {
			return setupErr("create /dev/%s: %w", d, err)
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return mountErr("devpts", pts, err)
	}
	shm := filepath.Join(dev, "shm")
	if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
		return mountErr("tmpfs", shm, err)
	}
	for name, target := range map[string]string{
		"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return setupErr("create /dev/%s: %w", name, err)
		}
	}
	if err := unix.Mount("", dev, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return mountErr("nodev", dev, err)
	}
	return nil
}

// mountProcSys mounts the pod's /proc and a /sys (read-only when ro) with
// the app's cgroups, read-only, below /sys/fs/cgroup.
func mountProcSys(a *App) error {
	proc, err := mkdirIn(a.Root, "/proc", 0o555)
	if err != nil {
		return err
	}
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return mountErr("proc", proc, err)
	}
	sys, err := mkdirIn(a.Root, "/sys", 0o555)
	if err != nil {
		return err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	if a.MaskPaths {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("sysfs", sys, "sysfs", flags, ""); err != nil {
		// No sysfs of our own (e.g. a network namespace we do not own):
		// bind the host's.
		if err := unix.Mount("/sys", sys, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return mountErr("sysfs", sys, err)
		}
		if err := remount(sys, flags, false); err != nil {
			return err
		}
	}
	return mountCgroups(a, sys)
}

// mountCgroups binds the app's own cgroup directories at their places
// below /sys/fs/cgroup, then makes the whole tree read-only at once.
func mountCgroups(a *App, sys string) error {
	if len(a.CgroupMounts) == 0 {
		return nil
	}
	cg := filepath.Join(sys, "fs", "cgroup")
	single := len(a.CgroupMounts) == 1 && a.CgroupMounts[0].Target == "/sys/fs/cgroup"
	if !single {
		if err := unix.Mount("cgroup", cg, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
			return mountErr("tmpfs", cg, err)
		}
	}
	for _, m := range a.CgroupMounts {
		t := filepath.Join(a.Root, m.Target)
		if !single {
			if err := os.Mkdir(t, 0o755); err != nil {
				return setupErr("create %s: %w", m.Target, err)
			}
		}
		if err := unix.Mount(m.Source, t, "", unix.MS_BIND, ""); err != nil {
			return mountErr("cgroup "+m.Source, t, err)
		}
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	err := unix.MountSetattr(-1, cg, unix.AT_RECURSIVE, &attr)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) {
		return mountErr("read-only flags", cg, err)
	}
	// Before Linux 5.12: one remount per mount.
	for _, m := range a.CgroupMounts {
		if err := remount(filepath.Join(a.Root, m.Target), unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, false); err != nil {
			return err
		}
	}
	if !single {
		return remount(cg, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, false)
	}
	return nil
}

// remount changes the flags of the bind mount at target (recursively
// with mount_setattr when recursive and only read-only is asked).
func remount(target string, flags uintptr, recursive bool) error {
	if recursive && flags == unix.MS_RDONLY {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		err := unix.MountSetattr(-1, target, unix.AT_RECURSIVE, &attr)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENOSYS) {
			return mountErr("read-only (recursively)", target, err)
		}
	}
	if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|flags, ""); err != nil {
		return mountErr("new flags", target, err)
	}
	return nil
}

// maskPaths hides maskedPaths and write-protects readOnlyPaths.
func maskPaths(root string) error {
	for _, p := range maskedPaths {
		t := filepath.Join(root, p) // below our own /proc and /sys: no symlinks to fear
		fi, err := os.Stat(t)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return setupErr("mask %s: %w", p, err)
		}
		if fi.IsDir() {
			err = unix.Mount("tmpfs", t, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
		} else {
			err = unix.Mount("/dev/null", t, "", unix.MS_BIND, "")
		}
		if err != nil {
			return mountErr("a mask", t, err)
		}
	}
	for _, p := range readOnlyPaths {
		t := filepath.Join(root, p)
		if _, err := os.Stat(t); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := unix.Mount(t, t, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return mountErr("itself", t, err)
		}
		if err := remount(t, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, false); err != nil {
			return err
		}
	}
	return nil
}

// bindIn binds the host path src on p inside root (a directory or a file,
// like src), nodev and nosuid, and read-only if ro; with recursive, the
// mounts below src too, every one of them made nodev and nosuid (and
// read-only). So a device node in a volume, whether the host put it there
// or the app made it, cannot be opened from the app (EACCES), and a
// setuid or file-capability binary in it gives the app no privilege.
func bindIn(root, src, p string, ro, recursive bool) error {
	fi, err := os.Stat(src)
	if err != nil {
		return setupErr("volume source %s: %w", src, err)
	}
	var t string
	if fi.IsDir() {
		t, err = mkdirIn(root, p, 0o755)
	} else {
		t, err = mkfileIn(root, p)
	}
	if err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND)
	if recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(src, t, "", flags, ""); err != nil {
		return mountErr(src, p, err)
	}
	return restrictBind(t, ro, recursive)
}

// restrictBind adds nodev and nosuid (and read-only when ro) to the bind
// mount at target, and with recursive to every mount below it, keeping
// the flags each already has (a noexec source stays noexec).
func restrictBind(target string, ro, recursive bool) error {
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOSUID}
	add := uintptr(unix.MS_NODEV | unix.MS_NOSUID)
	if ro {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
		add |= unix.MS_RDONLY
	}
	var at uint
	if recursive {
		at = unix.AT_RECURSIVE
	}
	err := unix.MountSetattr(-1, target, at, &attr)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) {
		return mountErr("nodev,nosuid flags", target, err)
	}
	// Before Linux 5.12.
	return restrictByRemount(target, add, recursive)
}

// restrictByRemount adds the flags add to the bind mount at target (and
// with recursive to every mount below it) by one remount per mount, with
// the flags it has.
func restrictByRemount(target string, add uintptr, recursive bool) error {
	targets := []string{target}
	if recursive {
		mi, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			return setupErr("list the mounts below %s: %w", target, err)
		}
		targets, err = mounts.Below(mi, target)
		mi.Close()
		if err != nil {
			return setupErr("list the mounts below %s: %w", target, err)
		}
	}
	for _, t := range targets {
		var st unix.Statfs_t
		if err := unix.Statfs(t, &st); err != nil {
			return mountErr("nodev,nosuid flags", t, err)
		}
		if err := unix.Mount("", t, "", unix.MS_REMOUNT|unix.MS_BIND|add|mountFlags(st.Flags), ""); err != nil {
			return mountErr("nodev,nosuid flags", t, err)
		}
	}
	return nil
}

// mountFlags turns the per-mount flags of statfs(2) into mount(2) flags.
func mountFlags(st int64) uintptr {
	var out uintptr
	for stf, ms := range map[int64]uintptr{
		unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOSUID: unix.MS_NOSUID,
		unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC,
		unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME,
		unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if st&stf != 0 {
			out |= ms
		}
	}
	return out
}

// pivotRoot makes root the process's "/" and detaches the old root.
func pivotRoot(root string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return setupErr("open /: %w", err)
	}
	defer unix.Close(oldroot)
	if err := unix.Chdir(root); err != nil {
		return setupErr("enter the app's root %s: %w", root, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return setupErr("pivot_root into %s: %w", root, err)
	}
	// The old root is now stacked on top of the new one: detach it.
	if err := unix.Fchdir(oldroot); err != nil {
		return setupErr("pivot_root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return setupErr("pivot_root: make the old root a slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return setupErr("pivot_root: detach the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return setupErr("pivot_root: %w", err)
	}
	return nil
}

// setupRoot mounts the app's file system tree at a.Root, all but what
// finishRoot adds.
func setupRoot(a *App) error {
	if err := mountRoot(a); err != nil {
		return err
	}
	if err := mountProcSys(a); err != nil {
		return err
	}
	if err := mountDev(a.Root); err != nil {
		return err
	}
	if a.MaskPaths {
		if err := maskPaths(a.Root); err != nil {
			return err
		}
	}
	for _, m := range a.Mounts {
		if err := bindIn(a.Root, m.Source, m.Target, m.ReadOnly, m.Recursive); err != nil {
			return fmt.Errorf("volume %s: %w", m.Volume, err)
		}
	}
	if a.WorkingDir != "" && a.WorkingDir != "/" {
		// Best effort: a read-only image without it fails at chdir.
		mkdirIn(a.Root, a.WorkingDir, 0o755)
	}
	return nil
}

// finishRoot completes the app's root once the pod may start: /etc/hosts
// and /etc/resolv.conf, which the pod's networks decide, then the root
// made read-only if asked.
func finishRoot(a *App) error {
	for _, f := range []struct{ src, dst string }{{a.HostsFile, "/etc/hosts"}, {a.ResolvConf, "/etc/resolv.conf"}} {
		if f.src == "" {
			continue
		}
		if err := bindIn(a.Root, f.src, f.dst, true, false); err != nil {
			return err
		}
	}
	if a.ReadOnlyRootFS {
		if err := remount(a.Root, unix.MS_RDONLY|unix.MS_NODEV, false); err != nil {
			return err
		}
	}
	return nil
}

// statOwner returns the owner of path (in the current root).
var statOwner = ident.StatOwner
