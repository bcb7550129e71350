package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rkt/rkt/tests/testutils"
)

// nobodyUID is the unprivileged user the non-root tests run rkt as.
const nobodyUID = 65534

// unusedGID returns a group ID no group on this host has: the test's
// stand-in for the rkt group (no /etc/group change needed: the
// credentials carry it).
func unusedGID(t *testing.T) int {
	t.Helper()
	for gid := 61000; gid < 61100; gid++ {
		if _, err := user.LookupGroupId(strconv.Itoa(gid)); err != nil {
			return gid
		}
	}
	t.Fatal("no free group ID in 61000-61099")
	return 0
}

// applyTmpfiles applies the data directory lines ("d /var/lib/rkt...") of
// dist/tmpfiles.d/rkt.conf to dir, as systemd-tmpfiles would, with gid for
// the rkt group.
func applyTmpfiles(t *testing.T, dir string, gid int) {
	t.Helper()
	root, err := testutils.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "dist", "tmpfiles.d", "rkt.conf"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] != "d" || !strings.HasPrefix(f[1], "/var/lib/rkt") {
			continue
		}
		path := dir + strings.TrimPrefix(f[1], "/var/lib/rkt")
		mode, err := strconv.ParseUint(f[2], 8, 32)
		if err != nil || f[3] != "root" {
			t.Fatalf("tmpfiles line %q: want an octal mode and owner root", sc.Text())
		}
		g := 0
		if f[4] == "rkt" {
			g = gid
		}
		if err := os.MkdirAll(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, 0, g); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Chmod(path, uint32(mode)); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatal("dist/tmpfiles.d/rkt.conf has no /var/lib/rkt lines")
	}
}

// runAs runs rkt (with the context's directories) as nobody with the
// given supplementary groups. The binary is a copy in the context's
// directory, which nobody can reach (the checkout may be private: the
// mutation tests build in a temporary one).
func runAs(t *testing.T, c *testutils.RktCtx, groups []uint32, args ...string) testutils.Result {
	t.Helper()
	bin := filepath.Join(filepath.Dir(c.Dir), "rkt")
	if _, err := os.Stat(bin); err != nil {
		data, err := os.ReadFile(c.Bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(bin, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutils.RunTimeout)
	defer cancel()
	cmd := c.Cmd(ctx, args...)
	cmd.Path, cmd.Args[0] = bin, bin
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: nobodyUID, Gid: nobodyUID, Groups: groups}
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := testutils.Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run rkt %v as uid %d: %v", args, nobodyUID, err)
	}
	return r
}

// TestNonRootReadOnly: with the data directory set up by
// dist/tmpfiles.d/rkt.conf, members of the rkt group may list pods, see
// their status and manifest, and list and read images, as an unprivileged
// user; everyone else is told "permission denied" (not "not found"), and
// the other commands say they need root.
func TestNonRootReadOnly(t *testing.T) {
	e := newPodEnv(t)
	gid := unusedGID(t)
	// The context's directories are private to root: let others reach them.
	if err := os.Chmod(filepath.Dir(e.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	applyTmpfiles(t, e.Dir, gid)
	uuid, r := e.runSaved()
	if r.Exit != 0 {
		t.Fatalf("rkt run: exit %d\nstderr: %s", r.Exit, r.Stderr)
	}
	t.Cleanup(func() { e.Run("gc", "--grace-period=0s") })

	member := []uint32{uint32(gid)}
	for _, args := range [][]string{
		{"list"},
		{"status", uuid},
		{"cat-manifest", uuid},
		{"image", "list"},
		{"image", "cat-manifest", podTestApp},
	} {
		r := runAs(t, e.RktCtx, member, args...)
		if r.Exit != 0 {
			t.Errorf("rkt %v as a member of the rkt group: exit %d, stderr %q", args, r.Exit, r.Stderr)
		}
		want := map[string]string{"list": uuid[:8], "status": "state=exited", "cat-manifest": `"acKind"`, "image": podTestApp}[args[0]]
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("rkt %v as a member of the rkt group printed %q, want %q in it", args, r.Stdout, want)
		}
	}
	for _, args := range [][]string{{"gc"}, {"rm", uuid}, {"fetch", e.app}} {
		r := runAs(t, e.RktCtx, member, args...)
		if r.Exit != 254 || !strings.Contains(r.Stderr, "needs root") {
			t.Errorf("rkt %v as a member of the rkt group: exit %d, stderr %q; want 254 and \"needs root\"", args, r.Exit, r.Stderr)
		}
	}

	// Outside the group: permission denied, saying what is needed.
	for _, args := range [][]string{{"list"}, {"status", uuid}, {"cat-manifest", uuid}, {"image", "list"}} {
		r := runAs(t, e.RktCtx, nil, args...)
		if r.Exit != 254 || !strings.Contains(r.Stderr, "permission denied") || !strings.Contains(r.Stderr, "rkt group") || strings.Contains(r.Stderr, "not found") {
			t.Errorf("rkt %v outside the rkt group: exit %d, stderr %q; want 254, \"permission denied\" and the rkt group named", args, r.Exit, r.Stderr)
		}
	}

	// What only root reads keeps no group: the image trees.
	trees, _ := filepath.Glob(filepath.Join(e.Dir, "cas", "tree", "*"))
	if len(trees) == 0 {
		t.Fatal("no image tree in the store")
	}
	for _, tr := range trees {
		var st syscall.Stat_t
		if err := syscall.Lstat(tr, &st); err != nil {
			t.Fatal(err)
		}
		if int(st.Gid) == gid || st.Mode&syscall.S_ISGID != 0 {
			t.Errorf("tree %s has gid %d, mode %o: it must not inherit the rkt group or setgid", tr, st.Gid, st.Mode&0o7777)
		}
		rootfs := filepath.Join(tr, "rootfs")
		if err := syscall.Lstat(rootfs, &st); err == nil && (int(st.Gid) == gid || st.Mode&syscall.S_ISGID != 0) {
			t.Errorf("%s has gid %d, mode %s: an image's files must keep their own group", rootfs, st.Gid, fmt.Sprintf("%o", st.Mode&0o7777))
		}
	}
}
