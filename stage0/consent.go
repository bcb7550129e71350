package stage0

import (
	"errors"
	"fmt"
	"strings"

	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/pkg/caps"
	"github.com/rkt/rkt/pkg/seccomp"
)

// An image may narrow its apps' privileges but not widen them: what goes
// beyond the defaults needs the operator's consent on the command line
// (docs/security.md, "Image isolators and operator consent"). The
// isolators and what they can do:
//
//   - os/linux/capabilities-retain-set widens when it names a capability
//     outside the default set; capabilities-remove-set only narrows.
//   - os/linux/seccomp-retain-set and -remove-set replace the default
//     filter: they widen when they let through a call the default blocks
//     (seccomp.Filter.Unblocked).
//   - os/linux/oom-score-adj below 0 shields the app from the OOM killer
//     at the host's expense (the kernel wants CAP_SYS_RESOURCE for that).
//   - os/linux/no-new-privileges false grants nothing: stage2 sets
//     no_new_privs for non-root apps whatever it says, and root apps do
//     not have it by default.
//   - resource/* and os/linux/cpu-shares are limits, not privileges;
//     os/linux/selinux-context, os/unix/sysctl, resource/block-* and
//     resource/network-bandwidth are not applied by rkt's stage1s.
//
// Consent is an isolator flag after the image (--caps-retain,
// --caps-remove, --seccomp, --oom-score-adj), which replaces the image's
// isolators of that kind, or --insecure-options=capabilities or seccomp.

// ErrImagePrivileges is the class of the error for an image that asks
// for privileges beyond the defaults without the operator's consent.
var ErrImagePrivileges = errors.New("the image asks for privileges beyond the defaults")

// Consent is what the operator allowed for every app on the command
// line beyond the default isolation, whatever the images say.
type Consent struct {
	Capabilities bool // --insecure-options=capabilities: every capability
	Seccomp      bool // --insecure-options=seccomp: no seccomp filter
}

// Widening is one image isolator that widens an app's privileges.
type Widening struct {
	Isolator types.ACIdentifier
	// What it grants, for a message.
	What string
	// AppFlag is the flag after the image that replaces the isolator
	// (its value, when given, grants what the image asked);
	// InsecureOption the --insecure-options value that allows it, if any.
	AppFlag, InsecureOption string
}

func (w Widening) String() string {
	allow := w.AppFlag + " after the image"
	if w.InsecureOption != "" {
		allow += ", or --insecure-options=" + w.InsecureOption
	}
	return fmt.Sprintf("%s %s (to allow it, pass %s)", w.Isolator, w.What, allow)
}

// ImageWidenings returns the isolators of an image's app that widen the
// app's privileges beyond rkt's defaults and that the operator's consent
// does not cover. isos are the image's isolators that the command line
// did not replace. A seccomp set naming an unknown call is an error.
func ImageWidenings(isos types.Isolators, c Consent) ([]Widening, error) {
	var out []Widening
	for i := range isos {
		iso := &isos[i]
		switch v := iso.Value().(type) {
		case nil:
			// A name appc does not know: no stage1 applies it (the default
			// one refuses the pod), so it grants nothing.
			continue
		case *types.LinuxCapabilitiesRetainSet:
			if c.Capabilities {
				continue
			}
			var asked, extra []string
			for _, name := range v.Set() {
				n := strings.ToUpper(string(name))
				if !strings.HasPrefix(n, "CAP_") {
					n = "CAP_" + n
				}
				asked = append(asked, n)
				if !containsString(caps.DefaultCapabilities, n) && !containsString(extra, n) {
					extra = append(extra, n)
				}
			}
			if len(extra) > 0 {
				out = append(out, Widening{Isolator: iso.Name,
					What:    "retains " + strings.Join(extra, ", ") + ", outside the default capability set",
					AppFlag: "--caps-retain=" + strings.Join(asked, ","), InsecureOption: "capabilities"})
			}
		case types.LinuxSeccompSet:
			if c.Seccomp {
				continue
			}
			names := make([]string, len(v.Set()))
			for i, s := range v.Set() {
				names[i] = string(s)
			}
			_, retain := v.(*types.LinuxSeccompRetainSet)
			f, err := seccomp.FromSet(retain, names, string(v.Errno()))
			if err != nil {
				return nil, fmt.Errorf("isolator %s: %w", iso.Name, err)
			}
			if u := f.Unblocked(); len(u) > 0 {
				mode := "remove"
				if retain {
					mode = "retain"
				}
				out = append(out, Widening{Isolator: iso.Name,
					What:    "lets through system calls the default seccomp filter blocks (" + shortList(u, 8) + ")",
					AppFlag: "--seccomp=mode=" + mode + ",...", InsecureOption: "seccomp"})
			}
		case *types.LinuxOOMScoreAdj:
			if int(*v) < 0 {
				out = append(out, Widening{Isolator: iso.Name,
					What:    fmt.Sprintf("is %d, which shields the app from the OOM killer at the host's expense", int(*v)),
					AppFlag: fmt.Sprintf("--oom-score-adj=%d", int(*v))})
			}
		}
	}
	return out, nil
}

// checkImageIsolators refuses an app whose image widens its privileges
// without consent. flags says whether per-app flags exist (not with
// --pod-manifest).
func checkImageIsolators(isos types.Isolators, c Consent, flags bool) error {
	ws, err := ImageWidenings(isos, c)
	if err != nil || len(ws) == 0 {
		return err
	}
	msgs := make([]string, len(ws))
	for i, w := range ws {
		if flags {
			msgs[i] = w.String()
			continue
		}
		allow := "give the app its own \"app\" section with the isolator in the pod manifest"
		if w.InsecureOption != "" {
			allow = "pass --insecure-options=" + w.InsecureOption + ", or " + allow
		}
		msgs[i] = fmt.Sprintf("%s %s (to allow it, %s)", w.Isolator, w.What, allow)
	}
	return fmt.Errorf("%w: %s", ErrImagePrivileges, strings.Join(msgs, "; "))
}

// operatorReplaces returns the image isolators an isolator given on the
// command line replaces: a capability or seccomp flag replaces the
// image's set of either mode, since the two modes exclude each other.
func operatorReplaces(name types.ACIdentifier) []types.ACIdentifier {
	switch name {
	case types.LinuxCapabilitiesRetainSetName, types.LinuxCapabilitiesRevokeSetName:
		return []types.ACIdentifier{types.LinuxCapabilitiesRetainSetName, types.LinuxCapabilitiesRevokeSetName}
	case types.LinuxSeccompRetainSetName, types.LinuxSeccompRemoveSetName:
		return []types.ACIdentifier{types.LinuxSeccompRetainSetName, types.LinuxSeccompRemoveSetName}
	}
	return []types.ACIdentifier{name}
}

// imageIsolatorsKept returns the image's isolators that none of the
// operator's replaces.
func imageIsolatorsKept(image, operator types.Isolators) types.Isolators {
	replaced := map[types.ACIdentifier]bool{}
	for _, iso := range operator {
		for _, n := range operatorReplaces(iso.Name) {
			replaced[n] = true
		}
	}
	var kept types.Isolators
	for _, iso := range image {
		if !replaced[iso.Name] {
			kept = append(kept, iso)
		}
	}
	return kept
}

func shortList(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(list[:n], ", "), len(list)-n)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
