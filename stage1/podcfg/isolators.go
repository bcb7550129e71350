package podcfg

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/pkg/seccomp"
	"github.com/rkt/rkt/stage2"
)

// PidsLimitAnnotation is the app annotation that sets the app's pids
// (tasks) limit: a number, or "max" for none.
const PidsLimitAnnotation = "rkt.dev/pids-limit"

// DefaultPidsLimit is every app's pids limit unless PidsLimitAnnotation
// says otherwise. It guards the host against fork bombs; it is skipped
// quietly where no pids controller can be used (cgroup v2 with the
// controller not delegated).
const DefaultPidsLimit = 4096

// security is what the isolators say about an app's privileges.
type security struct {
	caps       []string // bounding set names; nil: every capability
	seccomp    *stage2.Seccomp
	noNewPrivs bool
	oomAdj     *int
}

// applyIsolators reads an app's isolators (appc types) and the pids
// annotation into limits and security settings, with the run flags that
// relax the defaults.
func applyIsolators(isos types.Isolators, ann types.Annotations, opts *Options) (cgroup.Limits, security, error) {
	l := cgroup.Limits{PidsMax: DefaultPidsLimit, PidsMaxIsDefault: true}
	sec := security{caps: append([]string(nil), stage2.DefaultCapabilities...)}
	var retainCaps, removeCaps []string
	var hasRetain, hasRemove bool
	var sc types.LinuxSeccompSet
	var scRetain bool
	for i := range isos {
		iso := &isos[i]
		switch v := iso.Value().(type) {
		case *types.ResourceCPU:
			if lim := v.Limit(); lim != nil {
				l.CPUMilli = lim.MilliValue()
			}
		case *types.ResourceMemory:
			if lim := v.Limit(); lim != nil {
				l.MemoryBytes = lim.Value()
			}
		case *types.LinuxCPUShares:
			l.CPUShares = int64(*v)
		case *types.LinuxOOMScoreAdj:
			n := int(*v)
			sec.oomAdj = &n
		case *types.LinuxNoNewPrivileges:
			sec.noNewPrivs = bool(*v)
		case *types.LinuxCapabilitiesRetainSet:
			hasRetain = true
			for _, c := range v.Set() {
				retainCaps = append(retainCaps, string(c))
			}
		case *types.LinuxCapabilitiesRevokeSet:
			hasRemove = true
			for _, c := range v.Set() {
				removeCaps = append(removeCaps, string(c))
			}
		case *types.LinuxSeccompRetainSet:
			if sc != nil {
				return l, sec, fmt.Errorf("isolators %s and a second seccomp set: give only one", iso.Name)
			}
			sc, scRetain = v, true
		case *types.LinuxSeccompRemoveSet:
			if sc != nil {
				return l, sec, fmt.Errorf("isolators %s and a second seccomp set: give only one", iso.Name)
			}
			sc = v
		case nil:
			return l, sec, fmt.Errorf("isolator %s: invalid or unknown value", iso.Name)
		}
	}
	if hasRetain && hasRemove {
		return l, sec, fmt.Errorf("isolators %s and %s exclude each other: give one", types.LinuxCapabilitiesRetainSetName, types.LinuxCapabilitiesRevokeSetName)
	}
	switch {
	case opts.DisableCaps:
		sec.caps = nil
	case hasRetain:
		sec.caps = retainCaps
	case hasRemove:
		drop := map[string]bool{}
		for _, c := range removeCaps {
			drop[normalizeCap(c)] = true
		}
		var keep []string
		for _, c := range sec.caps {
			if !drop[c] {
				keep = append(keep, c)
			}
		}
		sec.caps = keep
	}
	if !opts.DisableSeccomp {
		f := seccomp.Default()
		if sc != nil {
			var err error
			if f, err = seccomp.FromSet(scRetain, seccompNames(sc), string(sc.Errno())); err != nil {
				return l, sec, err
			}
		}
		sec.seccomp = &stage2.Seccomp{Retain: f.Retain, Syscalls: f.Syscalls, Errno: int(f.Errno), BlockNamespaceClone: f.BlockNamespaceClone}
	}
	if v, ok := ann.Get(PidsLimitAnnotation); ok {
		switch v = strings.TrimSpace(v); v {
		case "max", "0", "":
			l.PidsMax, l.PidsMaxIsDefault = 0, false
		default:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return l, sec, fmt.Errorf("annotation %s=%q: want a number of tasks or \"max\"", PidsLimitAnnotation, v)
			}
			l.PidsMax, l.PidsMaxIsDefault = n, false
		}
	}
	return l, sec, nil
}

// seccompNames returns the names (system calls and groups) of a seccomp
// isolator's set.
func seccompNames(sc types.LinuxSeccompSet) []string {
	names := make([]string, len(sc.Set()))
	for i, s := range sc.Set() {
		names[i] = string(s)
	}
	return names
}

func normalizeCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}
