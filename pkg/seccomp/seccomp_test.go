package seccomp

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	libseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
)

// run evaluates the filter on a seccomp_data for (arch, nr, arg0) with
// x/net/bpf's VM. Its loads are big-endian, so each 32-bit word is stored
// big-endian at the offset the kernel's native (little-endian) layout has.
func run(t *testing.T, raw []bpf.RawInstruction, a arch.AuditArch, nr int, arg0 uint64) uint32 {
	t.Helper()
	insts, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatalf("filter does not disassemble")
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatalf("filter rejected by the BPF VM: %v", err)
	}
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[0:], uint32(nr))
	binary.BigEndian.PutUint32(data[4:], uint32(a))
	binary.BigEndian.PutUint32(data[16:], uint32(arg0))
	binary.BigEndian.PutUint32(data[20:], uint32(arg0>>32))
	v, err := vm.Run(data)
	if err != nil {
		t.Fatalf("run filter: %v", err)
	}
	return uint32(v)
}

const (
	allow = uint32(libseccomp.ActionAllow)
	eperm = uint32(libseccomp.ActionErrno) | uint32(unix.EPERM)
)

func nr(t *testing.T, a *arch.Info, name string) int {
	t.Helper()
	n, ok := a.SyscallNames[name]
	if !ok {
		t.Fatalf("no %s on %s", name, a.Name)
	}
	return n
}

func TestDefaultFilter(t *testing.T) {
	raw, err := Default().Assemble()
	if err != nil {
		t.Fatal(err)
	}
	x := arch.X86_64
	for name, want := range map[string]uint32{
		"unshare": eperm, "mount": eperm, "setns": eperm, "ptrace": eperm, "kexec_load": eperm,
		"read": allow, "write": allow, "execve": allow, "getpid": allow, "openat": allow,
		"clone3": uint32(libseccomp.ActionErrno) | uint32(unix.ENOSYS),
	} {
		if got := run(t, raw, x.ID, nr(t, x, name), 0); got != want {
			t.Errorf("x86_64 %s: got %#x, want %#x", name, got, want)
		}
	}
	// clone: threads and forks pass, new namespaces do not.
	clone := nr(t, x, "clone")
	if got := run(t, raw, x.ID, clone, unix.CLONE_VM|unix.CLONE_THREAD|unix.CLONE_FS); got != allow {
		t.Errorf("thread clone: got %#x", got)
	}
	if got := run(t, raw, x.ID, clone, unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)); got != eperm {
		t.Errorf("clone(CLONE_NEWUSER): got %#x, want EPERM", got)
	}
	// The i386 ABI is filtered too.
	i := arch.I386
	for name, want := range map[string]uint32{"unshare": eperm, "mount": eperm, "read": allow, "getpid": allow} {
		if got := run(t, raw, i.ID, nr(t, i, name), 0); got != want {
			t.Errorf("i386 %s: got %#x, want %#x", name, got, want)
		}
	}
	if got := run(t, raw, i.ID, nr(t, i, "clone"), unix.CLONE_NEWNET); got != eperm {
		t.Errorf("i386 clone(CLONE_NEWNET): got %#x", got)
	}
	if got := run(t, raw, i.ID, nr(t, i, "clone"), unix.CLONE_VM); got != allow {
		t.Errorf("i386 plain clone: got %#x", got)
	}
	// x32 calls and unknown ABIs get ENOSYS.
	enosys := uint32(libseccomp.ActionErrno) | uint32(unix.ENOSYS)
	if got := run(t, raw, x.ID, nr(t, x, "read")|0x40000000, 0); got != enosys {
		t.Errorf("x32 read: got %#x, want ENOSYS", got)
	}
	if got := run(t, raw, arch.AARCH64.ID, 0, 0); got != enosys {
		t.Errorf("aarch64 call: got %#x, want ENOSYS", got)
	}
}

func TestRetainSet(t *testing.T) {
	names, err := Expand([]string{"read", "write", "exit_group"})
	if err != nil {
		t.Fatal(err)
	}
	f := Filter{Retain: true, Syscalls: names, Errno: unix.ENOTSUP}
	raw, err := f.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	x := arch.X86_64
	enotsup := uint32(libseccomp.ActionErrno) | uint32(unix.ENOTSUP)
	for name, want := range map[string]uint32{"read": allow, "execve": allow, "getpid": enotsup, "unshare": enotsup} {
		if got := run(t, raw, x.ID, nr(t, x, name), 0); got != want {
			t.Errorf("%s: got %#x, want %#x", name, got, want)
		}
	}
	// No errno: blocked calls kill the process.
	f.Errno = 0
	raw, err = f.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, raw, x.ID, nr(t, x, "getpid"), 0); got != uint32(libseccomp.ActionKillProcess) {
		t.Errorf("getpid without errno: got %#x, want kill", got)
	}
}

func TestRemoveSet(t *testing.T) {
	names, err := Expand([]string{"getpid", "@appc.io/empty"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Filter{Syscalls: names, Errno: unix.EACCES}.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	x := arch.X86_64
	if got := run(t, raw, x.ID, nr(t, x, "getpid"), 0); got != uint32(libseccomp.ActionErrno)|uint32(unix.EACCES) {
		t.Errorf("getpid: got %#x", got)
	}
	// A remove set replaces the default: unshare is allowed.
	if got := run(t, raw, x.ID, nr(t, x, "unshare"), 0); got != allow {
		t.Errorf("unshare: got %#x", got)
	}
}

func TestExpand(t *testing.T) {
	all, err := Expand([]string{"@appc.io/all"})
	if err != nil || len(all) < 300 {
		t.Fatalf("@appc.io/all: %d names, %v", len(all), err)
	}
	white, err := Expand([]string{"@docker/default-whitelist"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range white {
		if n == "mount" || n == "unshare" {
			t.Errorf("default whitelist contains %s", n)
		}
	}
	if len(white) >= len(all) || len(white) < len(all)-len(DefaultBlocked) {
		t.Errorf("whitelist has %d names of %d", len(white), len(all))
	}
	black, err := Expand([]string{"@rkt/default-blacklist", "mount"})
	if err != nil || len(black) != len(DefaultBlocked) {
		t.Errorf("blacklist + a duplicate: %d names (want %d), %v", len(black), len(DefaultBlocked), err)
	}
	for _, bad := range []string{"no_such_call", "@rkt/nope"} {
		if _, err := Expand([]string{bad}); !errors.Is(err, ErrUnknownSyscall) {
			t.Errorf("Expand(%s): err = %v, want ErrUnknownSyscall", bad, err)
		}
	}
}

func TestParseErrno(t *testing.T) {
	for name, want := range map[string]unix.Errno{"EPERM": unix.EPERM, "ENOTSUP": unix.ENOTSUP, "EACCES": unix.EACCES, "": 0} {
		got, err := ParseErrno(name)
		if err != nil || got != want {
			t.Errorf("ParseErrno(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := ParseErrno("EWHATEVER"); err == nil {
		t.Error("ParseErrno accepted a bogus name")
	}
}

func TestLargeRetainSet(t *testing.T) {
	names, err := Expand([]string{"@docker/default-whitelist"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Filter{Retain: true, Syscalls: names, Errno: unix.ENOSYS}.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	x := arch.X86_64
	enosys := uint32(libseccomp.ActionErrno) | uint32(unix.ENOSYS)
	for name, want := range map[string]uint32{"read": allow, "futex": allow, "unshare": enosys, "mount": enosys} {
		if got := run(t, raw, x.ID, nr(t, x, name), 0); got != want {
			t.Errorf("%s: got %#x, want %#x", name, got, want)
		}
	}
	// An allow list is not translated for i386: everything is blocked.
	if got := run(t, raw, arch.I386.ID, nr(t, arch.I386, "read"), 0); got != enosys {
		t.Errorf("i386 read: got %#x", got)
	}
}

// An allow list that does not allow unshare keeps the default's rule on
// clone: threads and forks pass, new namespaces do not, clone3 gets ENOSYS.
func TestFromSetRetainBlocksNamespaceClone(t *testing.T) {
	f, err := FromSet(true, []string{"read", "clone", "clone3", "exit_group"}, "EPERM")
	if err != nil {
		t.Fatal(err)
	}
	if !f.BlockNamespaceClone {
		t.Fatal("allow list without unshare: namespace clone not blocked")
	}
	raw, err := f.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	x := arch.X86_64
	clone := nr(t, x, "clone")
	enosys := uint32(libseccomp.ActionErrno) | uint32(unix.ENOSYS)
	for _, c := range []struct {
		name string
		nr   int
		arg  uint64
		want uint32
	}{
		{"read", nr(t, x, "read"), 0, allow},
		{"execve", nr(t, x, "execve"), 0, allow},
		{"getpid", nr(t, x, "getpid"), 0, eperm},
		{"thread clone", clone, unix.CLONE_VM | unix.CLONE_THREAD | unix.CLONE_FS, allow},
		{"fork clone", clone, uint64(unix.SIGCHLD), allow},
		{"clone(CLONE_NEWUSER)", clone, unix.CLONE_NEWUSER | uint64(unix.SIGCHLD), eperm},
		{"clone(CLONE_NEWNS)", clone, unix.CLONE_NEWNS, eperm},
		{"clone3", nr(t, x, "clone3"), 0, enosys},
	} {
		if got := run(t, raw, x.ID, c.nr, c.arg); got != c.want {
			t.Errorf("%s: got %#x, want %#x", c.name, got, c.want)
		}
	}
	if u := f.Unblocked(); len(u) != 0 {
		t.Errorf("unblocked %v, want none", u)
	}
	// Without clone in the list, clone stays blocked.
	f, err = FromSet(true, []string{"read"}, "EPERM")
	if err != nil {
		t.Fatal(err)
	}
	raw, err = f.Assemble()
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, raw, x.ID, clone, uint64(unix.SIGCHLD)); got != eperm {
		t.Errorf("clone not retained: got %#x, want EPERM", got)
	}
}

// Namespace creation through clone follows unshare.
func TestFromSetNamespaceRule(t *testing.T) {
	for _, c := range []struct {
		retain bool
		set    []string
		block  bool
	}{
		{true, []string{"read"}, true},
		{true, []string{"read", "unshare"}, false},
		{false, []string{"reboot"}, false},
		{false, []string{"@rkt/default-blacklist"}, true},
	} {
		f, err := FromSet(c.retain, c.set, "")
		if err != nil {
			t.Fatal(err)
		}
		if f.BlockNamespaceClone != c.block || f.Errno != 0 || f.Retain != c.retain {
			t.Errorf("FromSet(%v, %v) = %+v, want BlockNamespaceClone %v", c.retain, c.set, f, c.block)
		}
	}
	if _, err := FromSet(false, []string{"reboot"}, "EWHAT"); err == nil {
		t.Error("bad errno accepted")
	}
	if _, err := FromSet(false, []string{"no_such"}, ""); !errors.Is(err, ErrUnknownSyscall) {
		t.Errorf("unknown call: %v", err)
	}
}

func TestUnblocked(t *testing.T) {
	if u := Default().Unblocked(); len(u) != 0 {
		t.Errorf("default: unblocked %v", u)
	}
	f, _ := FromSet(false, []string{"@rkt/default-blacklist", "chmod"}, "EPERM")
	if u := f.Unblocked(); len(u) != 0 {
		t.Errorf("default plus chmod: unblocked %v", u)
	}
	f, _ = FromSet(false, []string{"reboot"}, "EPERM")
	u := f.Unblocked()
	for _, want := range []string{"mount", "open_by_handle_at", "unshare", "clone3", "clone with CLONE_NEW* flags"} {
		if !contains(u, want) {
			t.Errorf("remove set [reboot]: %s not in unblocked %v", want, u)
		}
	}
	if contains(u, "reboot") {
		t.Errorf("reboot unblocked")
	}
	// i386-only calls (vm86) are blocked by an allow list everywhere.
	f, _ = FromSet(true, []string{"read", "vm86", "mount"}, "EPERM")
	if u := f.Unblocked(); len(u) != 1 || u[0] != "mount" {
		t.Errorf("allow list: unblocked %v, want [mount]", u)
	}
	// A filter made by hand without the clone rule lets namespaces through.
	f = Filter{Retain: true, Syscalls: []string{"read", "clone"}}
	if u := f.Unblocked(); len(u) != 1 || u[0] != "clone with CLONE_NEW* flags" {
		t.Errorf("allow list with clone, no rule: unblocked %v", u)
	}
}

// TestDefaultFilterBlocksIOUring: io_uring's three calls fail with EPERM
// under the default filter, in both ABIs (i386 has the same numbers).
func TestDefaultFilterBlocksIOUring(t *testing.T) {
	raw, err := Default().Assemble()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*arch.Info{arch.X86_64, arch.I386} {
		for _, name := range []string{"io_uring_setup", "io_uring_enter", "io_uring_register"} {
			if got := run(t, raw, a.ID, nr(t, a, name), 0); got != eperm {
				t.Errorf("%s %s: got %#x, want EPERM (%#x)", a.Name, name, got, eperm)
			}
		}
	}
	// The default allow list (everything but the default deny list)
	// leaves them out too.
	names, err := Expand([]string{"@rkt/default-whitelist"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasPrefix(n, "io_uring") {
			t.Errorf("@rkt/default-whitelist allows %s", n)
		}
	}
}
