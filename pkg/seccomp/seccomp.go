// Package seccomp builds the seccomp filters of rkt apps from appc
// isolators (os/linux/seccomp-retain-set, os/linux/seccomp-remove-set) and
// rkt's default, and loads them. The BPF is made in pure Go with
// github.com/elastic/go-seccomp-bpf, so stage1 stays a static binary.
//
// The default filter (no isolator) is a deny list in the spirit of
// Docker's: the calls listed in DefaultBlocked fail with EPERM, and clone
// with any CLONE_NEW* flag fails with EPERM too (clone3, whose flags a
// filter cannot see, fails with ENOSYS so that libcs fall back to clone).
//
// An isolator's set replaces the default (FromSet); Unblocked tells what
// a filter lets through that the default blocks, which stage0 uses to
// refuse images that widen their own filter.
//
// Both native (x86_64) and i386 system calls are filtered; calls made
// with another ABI fail with ENOSYS.
package seccomp

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	libseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
)

// ErrUnknownSyscall is returned for a system call or group name that does
// not exist.
var ErrUnknownSyscall = errors.New("unknown system call")

// DefaultBlocked is rkt's default deny list (the group
// "@rkt/default-blacklist", also "@docker/default-blacklist"). Names that
// do not exist on an architecture are skipped there. io_uring is blocked
// as by Docker's and podman's defaults: its rings perform file and network
// operations that no filter sees (a seccomp filter judges system calls,
// and io_uring_enter runs many per call), and it has been a steady source
// of kernel privilege escalations.
var DefaultBlocked = []string{
	"_sysctl", "acct", "add_key", "adjtimex", "bpf", "clock_adjtime",
	"clock_settime", "create_module", "delete_module", "finit_module",
	"fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms",
	"init_module", "io_uring_enter", "io_uring_register", "io_uring_setup",
	"ioperm", "iopl", "kcmp", "kexec_file_load",
	"kexec_load", "keyctl", "lookup_dcookie", "mount", "mount_setattr",
	"move_mount", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
	"open_tree", "perf_event_open", "pivot_root", "process_vm_readv",
	"process_vm_writev", "ptrace", "query_module", "quotactl",
	"quotactl_fd", "reboot", "request_key", "setns", "settimeofday",
	"stime", "swapoff", "swapon", "sysfs", "umount", "umount2", "unshare",
	"uselib", "userfaultfd", "ustat", "vm86", "vm86old",
}

// cloneNewFlags are the namespace flags of clone(2).
const cloneNewFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET

// Filter is a seccomp policy.
type Filter struct {
	// Retain makes Syscalls an allow list; otherwise they are blocked.
	Retain bool
	// Syscalls are system call names, groups already expanded.
	Syscalls []string
	// Errno is returned by blocked calls; 0 kills the process (SIGSYS).
	Errno syscall.Errno
	// BlockNamespaceClone also blocks clone with CLONE_NEW* flags and makes
	// clone3 fail with ENOSYS (the default filter's extra rule), in an
	// allow list (clone retained) as in a deny list.
	BlockNamespaceClone bool
}

// FromSet builds the filter of a seccomp isolator: an allow list
// (os/linux/seccomp-retain-set, retain true) or a deny list
// (os/linux/seccomp-remove-set) of set, whose groups are expanded, with
// the isolator's errno name ("" kills the process). Creating namespaces
// with clone follows unshare: when the filter blocks unshare, clone with
// CLONE_NEW* flags is blocked too and clone3 fails with ENOSYS, as in the
// default filter; otherwise a new namespace through unshare would be
// refused and the same through clone let through.
func FromSet(retain bool, set []string, errno string) (Filter, error) {
	calls, err := Expand(set)
	if err != nil {
		return Filter{}, err
	}
	e, err := ParseErrno(errno)
	if err != nil {
		return Filter{}, err
	}
	return Filter{Retain: retain, Syscalls: calls, Errno: e, BlockNamespaceClone: retain != contains(calls, "unshare")}, nil
}

// Unblocked returns, sorted, what the default filter blocks and f lets
// through on the native architecture or its compatibility ABI: system
// call names, and "clone with CLONE_NEW* flags". Empty means f is at
// least as strict as the default (blocked calls may fail with another
// errno, which grants nothing).
func (f Filter) Unblocked() []string {
	native, others, err := arches()
	if err != nil {
		return []string{err.Error()}
	}
	exists := func(n string) bool {
		if _, ok := native.SyscallNames[n]; ok {
			return true
		}
		for _, o := range others {
			if _, ok := o.SyscallNames[n]; ok {
				return true
			}
		}
		return false
	}
	// allowed: whether f lets call n through. An allow list blocks every
	// call of the compatibility ABIs (compatProgram).
	allowed := func(n string) bool {
		if f.Retain {
			_, onNative := native.SyscallNames[n]
			return onNative && contains(f.Syscalls, n)
		}
		return exists(n) && !contains(f.Syscalls, n)
	}
	var out []string
	for _, n := range DefaultBlocked {
		if allowed(n) {
			out = append(out, n)
		}
	}
	if !f.BlockNamespaceClone {
		if allowed("clone3") {
			out = append(out, "clone3")
		}
		if allowed("clone") {
			out = append(out, "clone with CLONE_NEW* flags")
		}
	}
	sort.Strings(out)
	return out
}

// Default returns rkt's default filter.
func Default() Filter {
	return Filter{Syscalls: append([]string(nil), DefaultBlocked...), Errno: unix.EPERM, BlockNamespaceClone: true}
}

// nativeArch and the other ABIs filtered alongside it.
func arches() (*arch.Info, []*arch.Info, error) {
	native, err := arch.GetInfo("")
	if err != nil {
		return nil, nil, fmt.Errorf("seccomp: %w", err)
	}
	var others []*arch.Info
	if native.ID == arch.X86_64.ID {
		others = append(others, arch.I386)
	}
	return native, others, nil
}

// allSyscalls returns every system call name of the native architecture.
func allSyscalls() []string {
	native, _, err := arches()
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(native.SyscallNames))
	for n := range native.SyscallNames {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Expand resolves groups in an isolator's set: "@rkt/default-blacklist"
// and "@docker/default-blacklist" (DefaultBlocked), "@rkt/default-whitelist"
// and "@docker/default-whitelist" (every call except DefaultBlocked),
// "@appc.io/all" and "@appc.io/empty". Other names must be system calls of
// this machine (or of its compatibility ABI).
func Expand(set []string) ([]string, error) {
	native, others, err := arches()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	for _, e := range set {
		switch e {
		case "@rkt/default-blacklist", "@docker/default-blacklist":
			add(DefaultBlocked...)
		case "@rkt/default-whitelist", "@docker/default-whitelist":
			blocked := map[string]bool{}
			for _, n := range DefaultBlocked {
				blocked[n] = true
			}
			for _, n := range allSyscalls() {
				if !blocked[n] {
					add(n)
				}
			}
		case "@appc.io/all":
			add(allSyscalls()...)
		case "@appc.io/empty":
		default:
			if strings.HasPrefix(e, "@") {
				return nil, fmt.Errorf("seccomp group %q: %w: known groups are @rkt/default-blacklist, @rkt/default-whitelist, @docker/default-blacklist, @docker/default-whitelist, @appc.io/all, @appc.io/empty", e, ErrUnknownSyscall)
			}
			_, known := native.SyscallNames[e]
			for _, o := range others {
				if _, ok := o.SyscallNames[e]; ok {
					known = true
				}
			}
			if !known {
				return nil, fmt.Errorf("seccomp set entry %q: %w on %s", e, ErrUnknownSyscall, native.Name)
			}
			add(e)
		}
	}
	return out, nil
}

// ParseErrno turns an isolator's errno ("EPERM", "ENOTSUP"...) into a
// number; "" gives 0 (kill the process).
func ParseErrno(name string) (syscall.Errno, error) {
	if name == "" {
		return 0, nil
	}
	// ENOTSUP is an alias of EOPNOTSUPP that ErrnoName never returns.
	if name == "ENOTSUP" {
		return unix.ENOTSUP, nil
	}
	for e := syscall.Errno(1); e < 4096; e++ {
		if unix.ErrnoName(e) == name {
			return e, nil
		}
	}
	return 0, fmt.Errorf("seccomp errno %q is not an errno name (like EPERM)", name)
}

// blockAction is what a blocked call gets.
func (f Filter) blockAction() libseccomp.Action {
	if f.Errno == 0 {
		return libseccomp.ActionKillProcess
	}
	return libseccomp.ActionErrno | libseccomp.Action(f.Errno&0xffff)
}

// program assembles the filter for the native architecture. Names missing
// there are skipped.
func (f Filter) program(a *arch.Info) ([]bpf.Instruction, error) {
	names := f.namesOn(a)
	p := libseccomp.Policy{DefaultAction: libseccomp.ActionAllow}
	if f.Retain {
		// Go needs execve to reach the app once the filter is loaded.
		if !contains(names, "execve") {
			names = append(names, "execve")
		}
		allowClone := false
		if f.BlockNamespaceClone {
			// clone passes only without CLONE_NEW* flags (the last,
			// conditional group) and clone3 fails with ENOSYS.
			allowClone = contains(names, "clone")
			names = without(names, "clone", "clone3")
			if _, ok := a.SyscallNames["clone3"]; ok {
				p.Syscalls = append(p.Syscalls, libseccomp.SyscallGroup{Names: []string{"clone3"}, Action: libseccomp.ActionErrno | libseccomp.Action(unix.ENOSYS)})
			}
		}
		p.DefaultAction = libseccomp.ActionKillProcess // replaced below
		p.Syscalls = append(p.Syscalls, libseccomp.SyscallGroup{Names: names, Action: libseccomp.ActionAllow})
		if allowClone {
			p.Syscalls = append(p.Syscalls, libseccomp.SyscallGroup{
				NamesWithCondtions: []libseccomp.NameWithConditions{{
					Name: "clone",
					Conditions: libseccomp.ArgumentConditions{{
						Argument: 0, Operation: libseccomp.BitsNotSet, Value: cloneNewFlags,
					}},
				}},
				Action: libseccomp.ActionAllow,
			})
		}
	} else {
		if f.BlockNamespaceClone && !contains(names, "clone3") {
			if _, ok := a.SyscallNames["clone3"]; ok {
				p.Syscalls = append(p.Syscalls, libseccomp.SyscallGroup{Names: []string{"clone3"}, Action: libseccomp.ActionErrno | libseccomp.Action(unix.ENOSYS)})
			}
		}
		if len(names) > 0 {
			p.Syscalls = append(p.Syscalls, libseccomp.SyscallGroup{Names: names, Action: f.blockAction()})
		}
		// A conditional rule leaves the argument in the accumulator, so it
		// must be the last group.
		if f.BlockNamespaceClone && !contains(names, "clone") {
			p.Syscalls = append(p.Syscalls, libseccomp.SyscallGroup{
				NamesWithCondtions: []libseccomp.NameWithConditions{{
					Name: "clone",
					Conditions: libseccomp.ArgumentConditions{{
						Argument: 0, Operation: libseccomp.BitsSet, Value: cloneNewFlags,
					}},
				}},
				Action: f.blockAction(),
			})
		}
	}
	if len(p.Syscalls) == 0 {
		// Nothing blocked: the library wants at least one group.
		p.Syscalls = append(p.Syscalls, libseccomp.SyscallGroup{Names: []string{"read"}, Action: libseccomp.ActionAllow})
	}
	insts, err := p.Assemble()
	if err != nil {
		return nil, fmt.Errorf("assemble seccomp filter for %s: %w", a.Name, err)
	}
	if f.Retain {
		last := len(insts) - 1
		if _, ok := insts[last].(bpf.RetConstant); !ok {
			return nil, fmt.Errorf("assemble seccomp filter for %s: unexpected program end %v", a.Name, insts[last])
		}
		insts[last] = bpf.RetConstant{Val: uint32(f.blockAction())}
	}
	return insts, nil
}

// namesOn returns the filter's calls that exist on a.
func (f Filter) namesOn(a *arch.Info) []string {
	var names []string
	for _, n := range f.Syscalls {
		if _, ok := a.SyscallNames[n]; ok && !contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// compatProgram filters a compatibility ABI (i386 on x86_64). The library
// only assembles for the native architecture, so this is a plain chain:
//
//	ld nr; [jeq clone3 -> ENOSYS]; jeq nr_k -> BLOCK ...;
//	[jeq clone; ld arg0; jset CLONE_NEW* -> BLOCK]; ALLOW; BLOCK
//
// An allow list (Retain) is not translated: every compat call is blocked.
func (f Filter) compatProgram(a *arch.Info) []bpf.Instruction {
	block := bpf.RetConstant{Val: uint32(f.blockAction())}
	if f.Retain {
		return []bpf.Instruction{block}
	}
	var nrs []uint32
	for _, n := range f.namesOn(a) {
		nrs = append(nrs, uint32(a.SyscallNames[n]))
	}
	_, hasClone := a.SyscallNames["clone"]
	clone3, hasClone3 := a.SyscallNames["clone3"]
	cloneRule := f.BlockNamespaceClone && hasClone && !contains(f.Syscalls, "clone")
	clone3Rule := f.BlockNamespaceClone && hasClone3 && !contains(f.Syscalls, "clone3")
	out := []bpf.Instruction{bpf.LoadAbsolute{Off: 0, Size: 4}}
	if clone3Rule {
		out = append(out,
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(clone3), SkipTrue: 1},
			bpf.RetConstant{Val: uint32(libseccomp.ActionErrno) | uint32(unix.ENOSYS)})
	}
	// Instructions after the blocked-number tests, before BLOCK: the
	// clone rule (3), ALLOW (1).
	tail := 1
	if cloneRule {
		tail += 3
	}
	for k, nr := range nrs {
		// From test k to BLOCK: the remaining tests, then the tail.
		out = append(out, bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipTrue: uint8(len(nrs) - 1 - k + tail)})
	}
	if cloneRule {
		out = append(out,
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(a.SyscallNames["clone"]), SkipTrue: 2},
			bpf.LoadAbsolute{Off: 16, Size: 4}, // low half of argument 0
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: cloneNewFlags, SkipTrue: 1})
	}
	out = append(out, bpf.RetConstant{Val: uint32(libseccomp.ActionAllow)}, block)
	return out
}

// Assemble returns the BPF program: a dispatch on the audit architecture
// to one filter per ABI; any other ABI gets ENOSYS.
func (f Filter) Assemble() ([]bpf.RawInstruction, error) {
	native, others, err := arches()
	if err != nil {
		return nil, err
	}
	n := 1 + len(others)
	progs := make([][]bpf.Instruction, 0, n)
	p, err := f.program(native)
	if err != nil {
		return nil, err
	}
	progs = append(progs, p)
	for _, o := range others {
		if !f.Retain && len(f.namesOn(o)) > 250 {
			return nil, fmt.Errorf("seccomp filter: %d calls is too many for the %s chain", len(f.namesOn(o)), o.Name)
		}
		progs = append(progs, f.compatProgram(o))
	}
	ids := []arch.AuditArch{native.ID}
	for _, o := range others {
		ids = append(ids, o.ID)
	}
	// Header: load the arch; test i (index 1+i) jumps to long jump i
	// (index n+2+i), which jumps to program i; no match gets ENOSYS.
	out := []bpf.Instruction{bpf.LoadAbsolute{Off: 4, Size: 4}}
	for _, id := range ids {
		out = append(out, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(id), SkipTrue: uint8(n)})
	}
	out = append(out, bpf.RetConstant{Val: uint32(libseccomp.ActionErrno) | uint32(unix.ENOSYS)})
	offset := 0
	for i := range progs {
		out = append(out, bpf.Jump{Skip: uint32(n - 1 - i + offset)})
		offset += len(progs[i])
	}
	for _, p := range progs {
		out = append(out, p...)
	}
	raw, err := bpf.Assemble(out)
	if err != nil {
		return nil, fmt.Errorf("assemble seccomp filter: %w", err)
	}
	return raw, nil
}

// without returns list without the names drop.
func without(list []string, drop ...string) []string {
	var out []string
	for _, x := range list {
		if !contains(drop, x) {
			out = append(out, x)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
