package testutils

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runInspect runs the inspect binary on the host and returns its stdout
// and exit code.
func runInspect(t *testing.T, bin string, env []string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), 0
	case errors.As(err, &exitErr):
		return stdout.String() + stderr.String(), exitErr.ExitCode()
	}
	t.Fatalf("run inspect %v: %v", args, err)
	return "", 0
}

func buildInspect(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the inspect binary")
	}
	bin, err := BuildInspect(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestBuildInspectIsStatic(t *testing.T) {
	bin := buildInspect(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("inspect is dynamically linked; it cannot run in a bare image")
		}
	}
	// A second build comes from the cache, into the new directory.
	again, err := BuildInspect(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if again == bin {
		t.Fatal("second BuildInspect returned the first directory")
	}
	a, _ := os.ReadFile(bin)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("cached inspect binary differs from the first build")
	}
	if fi, err := os.Stat(again); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("cached copy is not executable: %v", err)
	}
}

func TestInspectOnHost(t *testing.T) {
	bin := buildInspect(t)

	out, code := runInspect(t, bin, nil, "--print-msg=hello from inspect")
	if code != 0 || out != "hello from inspect\n" {
		t.Errorf("--print-msg: exit %d, output %q", code, out)
	}

	out, code = runInspect(t, bin, nil, "--print-msg=bye", "--exit-code=3")
	if code != 3 || !strings.Contains(out, "bye") {
		t.Errorf("--exit-code=3: exit %d, output %q", code, out)
	}

	out, _ = runInspect(t, bin, nil, "--print-user")
	want := fmt.Sprintf("uid: %d\ngid: %d\neuid: %d\negid: %d\n", os.Getuid(), os.Getgid(), os.Geteuid(), os.Getegid())
	if out != want {
		t.Errorf("--print-user: %q, want %q", out, want)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "data.txt")
	if err := os.WriteFile(path, []byte("line 1\nline 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runInspect(t, bin, nil, "--read-file="+path, "--stat-file="+path)
	if code != 0 || !strings.Contains(out, "<<<line 1\nline 2\n>>>\n") ||
		!strings.Contains(out, "file mode: 0600\n") || !strings.Contains(out, "file size: 14\n") {
		t.Errorf("--read-file/--stat-file: exit %d, output %q", code, out)
	}

	out, code = runInspect(t, bin, nil, "--read-file="+filepath.Join(dir, "missing"))
	if code != 1 || !strings.Contains(out, "no such file") {
		t.Errorf("missing file: exit %d, output %q", code, out)
	}

	written := filepath.Join(dir, "written")
	out, code = runInspect(t, bin, nil, "--write-file="+written, "--content=abc", "--read-file="+written)
	if code != 0 || !strings.Contains(out, "<<<abc>>>") {
		t.Errorf("--write-file then --read-file: exit %d, output %q", code, out)
	}

	out, _ = runInspect(t, bin, []string{"INSPECT_TEST_VAR=v1"}, "--print-env=INSPECT_TEST_VAR", "--print-env=INSPECT_UNSET_VAR")
	if out != "INSPECT_TEST_VAR=v1\nINSPECT_UNSET_VAR is unset\n" {
		t.Errorf("--print-env: %q", out)
	}

	out, _ = runInspect(t, bin, nil, "--print-pid", "--print-caps-pid=0", "--print-netns", "--print-no-new-privs")
	for _, key := range []string{"pid: ", "CapBnd: ", "CapEff: ", "netns: net:[", "no_new_privs: "} {
		if !strings.Contains(out, "\n"+key) && !strings.HasPrefix(out, key) {
			t.Errorf("output lacks %q: %q", key, out)
		}
	}

	if _, code = runInspect(t, bin, nil, "stray-argument"); code != 2 {
		t.Errorf("stray argument: exit %d, want 2", code)
	}
}

func TestInspectSignalsAndHTTP(t *testing.T) {
	bin := buildInspect(t)

	// SIGTERM: message and 143, or silence and 0.
	for _, silent := range []bool{false, true} {
		args := []string{"--sleep=20"}
		if silent {
			args = append(args, "--silent-sigterm")
		}
		cmd := exec.Command(bin, args...)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // let it install its handler
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		code := cmd.ProcessState.ExitCode()
		switch {
		case silent && (err != nil || stdout.Len() != 0):
			t.Errorf("--silent-sigterm: err %v, output %q", err, stdout.String())
		case !silent && (code != 143 || stdout.String() != "inspect: got SIGTERM\n"):
			t.Errorf("SIGTERM: exit %d, output %q", code, stdout.String())
		}
	}

	// --serve-http on a loopback port, read back with --get-http.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := exec.Command(bin, "--serve-http="+addr, "--serve-http-body=pod says hi", "--sleep=20")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, code := runInspect(t, bin, nil, "--get-http=http://"+addr+"/")
		if code == 0 {
			if out != "http status: 200\nhttp body: pod says hi\n" {
				t.Errorf("--get-http: %q", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never answered: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestInspectSdNotify(t *testing.T) {
	bin := buildInspect(t)
	name := fmt.Sprintf("@rkt-inspect-test-%d", os.Getpid())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out, code := runInspect(t, bin, []string{"NOTIFY_SOCKET=" + name}, `--sd-notify=READY=1\nSTATUS=up`)
	if code != 0 || out != "sd-notify: READY=1\\nSTATUS=up\n" {
		t.Fatalf("--sd-notify: exit %d, output %q", code, out)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(buf[:n]); got != "READY=1\nSTATUS=up" {
		t.Errorf("received %q", got)
	}

	out, code = runInspect(t, bin, []string{"NOTIFY_SOCKET="}, "--sd-notify=READY=1")
	if code != 1 || !strings.Contains(out, "NOTIFY_SOCKET is not set") {
		t.Errorf("no socket: exit %d, output %q", code, out)
	}
}

func TestInspectEntries(t *testing.T) {
	if _, err := findBusybox(); err != nil {
		t.Skipf("no static busybox: %v", err)
	}
	buildInspect(t)
	es, err := InspectEntries(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, e := range es {
		found[e.Header.Name] = true
		if e.Header.Name == "rootfs/inspect" && (e.Header.Mode != 0o755 || e.Header.Typeflag != tar.TypeReg || len(e.Body) == 0) {
			t.Errorf("inspect entry: %+v, %d bytes", e.Header, len(e.Body))
		}
	}
	for _, n := range []string{"rootfs/inspect", "rootfs/bin/busybox", "rootfs/bin/sh", "rootfs/etc/passwd", "rootfs/etc/group"} {
		if !found[n] {
			t.Errorf("missing %s", n)
		}
	}
}
