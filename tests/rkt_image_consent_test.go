package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Functional tests of "an image may narrow its privileges, not widen
// them" (docs/security.md, "Image isolators and operator consent").

// isolatorImage writes an inspect image named name with isolators (each
// {"name": ..., "value": ...}).
func (e *realEnv) isolatorImage(name string, isolators ...string) string {
	e.t.Helper()
	a := e.inspectACI("example.com/" + name)
	for _, iso := range isolators {
		a.Image.Isolators = append(a.Image.Isolators, json.RawMessage(iso))
	}
	return e.writeImage(name+".aci", a)
}

// refused runs args and wants rkt to exit 254 with every want in its
// error, leaving no pod behind.
func (e *realEnv) refused(args []string, want ...string) {
	e.t.Helper()
	before := len(e.listPods())
	r := e.Run(args...)
	if r.Exit != 254 {
		e.t.Errorf("not refused: %s", describeResult(args, r))
		return
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			e.t.Errorf("error lacks %q: %s", w, describeResult(args, r))
		}
	}
	if after := len(e.listPods()); after != before {
		e.t.Errorf("a refused run left a pod: %d listed, %d before", after, before)
	}
}

const (
	capsRetainIso = "os/linux/capabilities-retain-set"
	seccompRmIso  = "os/linux/seccomp-remove-set"
)

// TestImageCapabilitiesNeedConsent: an image that retains CAP_SYS_ADMIN
// and CAP_DAC_READ_SEARCH (with them an app can open host files with
// open_by_handle_at) is refused unless the operator consents with
// --insecure-options=capabilities or --caps-retain, and then has them.
func TestImageCapabilitiesNeedConsent(t *testing.T) {
	e := newRealEnv(t)
	img := e.isolatorImage("wide-caps", `{"name":"`+capsRetainIso+`","value":{"set":["CAP_SYS_ADMIN","CAP_DAC_READ_SEARCH"]}}`)
	caps := []string{"--", "--print-caps-pid=0"}

	e.refused(append([]string{insecureImage, "run", hostNet, img}, caps...),
		"app wide-caps", capsRetainIso, "CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH",
		"--caps-retain=CAP_SYS_ADMIN,CAP_DAC_READ_SEARCH", "--insecure-options=capabilities")
	// Consent for seccomp is not consent for capabilities; prepare checks too.
	e.refused(append([]string{"--insecure-options=image,seccomp", "run", hostNet, img}, caps...), capsRetainIso)
	e.refused([]string{insecureImage, "prepare", img}, capsRetainIso)

	args := append([]string{"--insecure-options=image,capabilities", "run", hostNet, img}, caps...)
	r := e.Run(args...)
	if r.Exit != 0 {
		t.Fatalf("%s", describeResult(args, r))
	}
	if v, _ := inspectValue(r.Stdout, "CapEff"); v != hostCapBnd(t) {
		t.Errorf("--insecure-options=capabilities: CapEff %s, want the host's bounding set %s", v, hostCapBnd(t))
	}
	want := capMaskOf(unix.CAP_SYS_ADMIN, unix.CAP_DAC_READ_SEARCH)
	if v, _ := inspectValue(r.Stdout, "CapEff"); !hasCaps(t, v, want) {
		t.Errorf("--insecure-options=capabilities: CapEff %s lacks %s", v, want)
	}

	// The same set given by the operator after the image.
	out := e.runOK(append([]string{img, "--caps-retain=CAP_SYS_ADMIN,CAP_DAC_READ_SEARCH"}, caps...)...)
	wantValue(t, out, "CapBnd", want)
	wantValue(t, out, "CapEff", want)
	// --caps-remove replaces the image's retain set as well.
	out = e.runOK(append([]string{img, "--caps-remove=CAP_MKNOD"}, caps...)...)
	wantValue(t, out, "CapEff", capMaskOf(without(appcDefaultCaps, unix.CAP_MKNOD)...))
}

// hasCaps says whether the hex capability mask got has every bit of want.
func hasCaps(t testing.TB, got, want string) bool {
	t.Helper()
	var g, w uint64
	if _, err := fmt.Sscanf(got, "%x", &g); err != nil {
		t.Errorf("capability mask %q: %v", got, err)
	}
	fmt.Sscanf(want, "%x", &w)
	return g&w == w
}

// TestImageSeccompNeedsConsent: an image whose seccomp remove set replaces
// the default filter (so unshare and mount pass) is refused unless the
// operator consents with --insecure-options=seccomp or --seccomp.
func TestImageSeccompNeedsConsent(t *testing.T) {
	e := newRealEnv(t)
	img := e.isolatorImage("wide-seccomp", `{"name":"`+seccompRmIso+`","value":{"set":["reboot"]}}`)
	script := []string{"--exec=/bin/sh", "--", "-c", "/inspect --print-seccomp; unshare -U /bin/true; echo unshare=$?"}

	e.refused(append([]string{insecureImage, "run", hostNet, img}, script...),
		"app wide-seccomp", seccompRmIso, "lets through", "--seccomp=mode=remove", "--insecure-options=seccomp")
	e.refused(append([]string{"--insecure-options=image,capabilities", "run", hostNet, img}, script...), seccompRmIso)

	args := append([]string{"--insecure-options=image,seccomp", "run", hostNet, img}, script...)
	r := e.Run(args...)
	if r.Exit != 0 {
		t.Fatalf("%s", describeResult(args, r))
	}
	wantValue(t, r.Stdout, "Seccomp", "0")
	if v := valueAfter(r.Stdout, "unshare="); v != "0" {
		t.Errorf("--insecure-options=seccomp: unshare exit %q, want 0\n%s", v, describeResult(args, r))
	}

	// The operator's own remove set after the image: a filter (mode 2)
	// that lets unshare through.
	out := e.runOK(append([]string{img, "--seccomp=mode=remove,reboot"}, script...)...)
	wantValue(t, out, "Seccomp", "2")
	if v := valueAfter(out, "unshare="); v != "0" {
		t.Errorf("--seccomp=mode=remove,reboot: unshare exit %q, want 0\n%s", v, out)
	}
}

// TestImageEscapeIsolatorsRefused: the isolators of the reported escape
// (CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH with open_by_handle_at let
// through) are refused together, and consent to one is not consent to
// the other.
func TestImageEscapeIsolatorsRefused(t *testing.T) {
	e := newRealEnv(t)
	img := e.isolatorImage("escape",
		`{"name":"`+capsRetainIso+`","value":{"set":["CAP_SYS_ADMIN","CAP_DAC_READ_SEARCH","CAP_CHOWN"]}}`,
		`{"name":"`+seccompRmIso+`","value":{"set":["reboot"]}}`)
	e.refused([]string{insecureImage, "run", hostNet, img}, capsRetainIso, seccompRmIso)
	e.refused([]string{"--insecure-options=image,capabilities", "run", hostNet, img}, seccompRmIso)
	e.refused([]string{"--insecure-options=image,seccomp", "run", hostNet, img}, capsRetainIso)
	args := []string{"--insecure-options=image,capabilities,seccomp", "run", hostNet, img}
	if r := e.Run(args...); r.Exit != 0 {
		t.Errorf("with both consents: %s", describeResult(args, r))
	}
}

// TestImageNarrowsWithoutConsent: an image may narrow its privileges
// with no flag: a retain set within the default capabilities, a remove
// set, a seccomp remove set holding the default list and more, and a
// retain set within the default whitelist.
func TestImageNarrowsWithoutConsent(t *testing.T) {
	e := newRealEnv(t)
	img := e.isolatorImage("narrow",
		`{"name":"`+capsRetainIso+`","value":{"set":["CAP_CHOWN","CAP_KILL"]}}`,
		`{"name":"`+seccompRmIso+`","value":{"set":["@rkt/default-blacklist","mkdir","mkdirat"],"errno":"EACCES"}}`)
	script := "/inspect --print-caps-pid=0 --print-seccomp; mkdir /x; echo mkdir=$?; unshare -U /bin/true; echo unshare=$?"
	out := e.runOK(append([]string{img}, shExec(script)...)...)
	wantValue(t, out, "CapBnd", capMaskOf(unix.CAP_CHOWN, unix.CAP_KILL))
	wantValue(t, out, "CapEff", capMaskOf(unix.CAP_CHOWN, unix.CAP_KILL))
	wantValue(t, out, "Seccomp", "2")
	if m, u := valueAfter(out, "mkdir="), valueAfter(out, "unshare="); m != "1" || u != "1" {
		t.Errorf("mkdir exit %q and unshare exit %q, want both blocked (1)\n%s", m, u, out)
	}

	img = e.isolatorImage("narrow-remove",
		`{"name":"os/linux/capabilities-remove-set","value":{"set":["CAP_NET_RAW","CAP_SYS_ADMIN"]}}`,
		`{"name":"os/linux/seccomp-retain-set","value":{"set":["@rkt/default-whitelist"],"errno":"EPERM"}}`)
	out = e.runOK(append([]string{img}, shExec(script)...)...)
	wantValue(t, out, "CapEff", capMaskOf(without(appcDefaultCaps, unix.CAP_NET_RAW)...))
	wantValue(t, out, "Seccomp", "2")
	if m, u := valueAfter(out, "mkdir="), valueAfter(out, "unshare="); m != "0" || u != "1" {
		t.Errorf("default whitelist: mkdir exit %q (want 0) and unshare exit %q (want 1)\n%s", m, u, out)
	}
}

// TestPodManifestImageIsolators: a --pod-manifest app that takes its
// image's app gets the image's isolators checked as an image's; an app
// section the operator wrote in the manifest is the operator's.
func TestPodManifestImageIsolators(t *testing.T) {
	e := newRealEnv(t)
	img := e.isolatorImage("pm-caps", `{"name":"`+capsRetainIso+`","value":{"set":["CAP_SYS_ADMIN"]}}`)
	id := fetchOK(t, e.RktCtx, "--full", img)[0]
	write := func(name, pm string) string {
		p := filepath.Join(e.dir, name)
		if err := os.WriteFile(p, []byte(pm), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inherit := write("inherit.json", fmt.Sprintf(`{"acVersion":"0.8.11","acKind":"PodManifest","apps":[
		{"name":"inherits","image":{"id":%q}}]}`, id))
	e.refused([]string{insecureImage, "run", hostNet, "--pod-manifest=" + inherit},
		"app inherits", capsRetainIso, "CAP_SYS_ADMIN", "--insecure-options=capabilities", `"app" section`)
	args := []string{"--insecure-options=image,capabilities", "run", hostNet, "--pod-manifest=" + inherit}
	if r := e.Run(args...); r.Exit != 0 {
		t.Errorf("%s", describeResult(args, r))
	}

	own := write("own.json", fmt.Sprintf(`{"acVersion":"0.8.11","acKind":"PodManifest","apps":[
		{"name":"own","image":{"id":%q},"app":{"exec":["/inspect","--print-caps-pid=0"],"user":"0","group":"0",
		 "isolators":[{"name":%q,"value":{"set":["CAP_SYS_ADMIN","CAP_DAC_READ_SEARCH"]}}]}}]}`, id, capsRetainIso))
	args = []string{insecureImage, "run", hostNet, "--pod-manifest=" + own}
	r := e.Run(args...)
	if r.Exit != 0 {
		t.Fatalf("%s", describeResult(args, r))
	}
	wantValue(t, r.Stdout, "CapEff", capMaskOf(unix.CAP_SYS_ADMIN, unix.CAP_DAC_READ_SEARCH))
}
