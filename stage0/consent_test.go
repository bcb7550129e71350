package stage0

import (
	"errors"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/pkg/seccomp"
)

func isolator(t *testing.T, name, value string) types.Isolator {
	t.Helper()
	var iso types.Isolator
	if err := iso.UnmarshalJSON([]byte(`{"name":"` + name + `","value":` + value + `}`)); err != nil {
		t.Fatalf("isolator %s: %v", name, err)
	}
	return iso
}

func TestImageWidenings(t *testing.T) {
	const (
		capsRetain = "os/linux/capabilities-retain-set"
		capsRemove = "os/linux/capabilities-remove-set"
		scRetain   = "os/linux/seccomp-retain-set"
		scRemove   = "os/linux/seccomp-remove-set"
	)
	for _, tc := range []struct {
		name    string
		isos    [][2]string
		consent Consent
		want    []string // substrings of the message, "" for none
	}{
		{name: "no isolators"},
		{name: "limits", isos: [][2]string{
			{"resource/memory", `{"limit":"1G"}`}, {"resource/cpu", `{"limit":"2"}`},
			{"os/linux/cpu-shares", `2048`}, {"os/linux/oom-score-adj", `500`},
			{"os/linux/no-new-privileges", `false`},
		}},
		{name: "isolator unknown to appc", isos: [][2]string{{"example.com/custom", `{"x":1}`}}},
		{name: "retain subset of default", isos: [][2]string{{capsRetain, `{"set":["CAP_NET_BIND_SERVICE","CAP_CHOWN"]}`}}},
		{name: "remove", isos: [][2]string{{capsRemove, `{"set":["CAP_CHOWN","CAP_SYS_ADMIN"]}`}}},
		{name: "retain beyond default", isos: [][2]string{{capsRetain, `{"set":["CAP_SYS_ADMIN","CAP_DAC_READ_SEARCH","CAP_CHOWN"]}`}},
			want: []string{capsRetain, "CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH", "--caps-retain=CAP_SYS_ADMIN,CAP_DAC_READ_SEARCH,CAP_CHOWN", "--insecure-options=capabilities"}},
		{name: "retain lower case without prefix", isos: [][2]string{{capsRetain, `{"set":["sys_admin"]}`}},
			want: []string{"CAP_SYS_ADMIN"}},
		{name: "retain beyond default, consent", isos: [][2]string{{capsRetain, `{"set":["CAP_SYS_ADMIN"]}`}},
			consent: Consent{Capabilities: true}},
		{name: "retain beyond default, wrong consent", isos: [][2]string{{capsRetain, `{"set":["CAP_SYS_ADMIN"]}`}},
			consent: Consent{Seccomp: true}, want: []string{capsRetain}},
		{name: "seccomp remove set replacing the default", isos: [][2]string{{scRemove, `{"set":["reboot"]}`}},
			want: []string{scRemove, "_sysctl, acct", "more", "--seccomp=mode=remove", "--insecure-options=seccomp"}},
		{name: "seccomp remove set, consent", isos: [][2]string{{scRemove, `{"set":["reboot"]}`}}, consent: Consent{Seccomp: true}},
		{name: "seccomp remove set holding the default", isos: [][2]string{{scRemove, `{"set":["@rkt/default-blacklist","chmod"],"errno":"EACCES"}`}}},
		{name: "seccomp remove set of the default", isos: [][2]string{{scRemove, `{"set":["@rkt/default-blacklist"]}`}, {"resource/memory", `{"limit":"1G"}`}}},
		{name: "seccomp remove set missing two", isos: [][2]string{{scRemove, `{"set":["` + strings.Join(blockedBut("open_by_handle_at", "unshare"), `","`) + `"]}`}},
			want: []string{"(clone with CLONE_NEW* flags, clone3, open_by_handle_at, unshare)"}},
		{name: "seccomp retain set within the default", isos: [][2]string{{scRetain, `{"set":["read","write","exit_group","clone","clone3"]}`}}},
		{name: "seccomp retain set of the default whitelist", isos: [][2]string{{scRetain, `{"set":["@rkt/default-whitelist"]}`}}},
		{name: "seccomp retain set allowing mount", isos: [][2]string{{scRetain, `{"set":["read","mount"]}`}},
			want: []string{scRetain, "(mount)", "--seccomp=mode=retain"}},
		{name: "seccomp retain set of everything", isos: [][2]string{{scRetain, `{"set":["@appc.io/all"]}`}},
			want: []string{scRetain, "_sysctl", "more"}},
		{name: "negative oom score", isos: [][2]string{{"os/linux/oom-score-adj", `-1000`}},
			want: []string{"os/linux/oom-score-adj", "-1000", "--oom-score-adj=-1000"}},
		{name: "two at once", isos: [][2]string{{capsRetain, `{"set":["CAP_NET_ADMIN"]}`}, {scRemove, `{"set":["reboot"]}`}},
			want: []string{capsRetain, "CAP_NET_ADMIN", scRemove}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var isos types.Isolators
			for _, kv := range tc.isos {
				isos = append(isos, isolator(t, kv[0], kv[1]))
			}
			err := checkImageIsolators(isos, tc.consent, true)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrImagePrivileges) {
				t.Fatalf("err = %v, want ErrImagePrivileges", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q lacks %q", err, w)
				}
			}
		})
	}
}

// blockedBut returns the default blocked calls but some.
func blockedBut(names ...string) []string {
	var out []string
	for _, n := range seccomp.DefaultBlocked {
		if !containsString(names, n) {
			out = append(out, n)
		}
	}
	return out
}

func TestImageWideningsPodManifestHint(t *testing.T) {
	isos := types.Isolators{isolator(t, "os/linux/oom-score-adj", `-5`), isolator(t, "os/linux/capabilities-retain-set", `{"set":["CAP_SYS_ADMIN"]}`)}
	err := checkImageIsolators(isos, Consent{}, false)
	if err == nil {
		t.Fatal("not refused")
	}
	if msg := err.Error(); strings.Contains(msg, "after the image") || !strings.Contains(msg, "pass --insecure-options=capabilities") || !strings.Contains(msg, `own "app" section`) {
		t.Errorf("message %q", msg)
	}
}

func TestImageWideningsBadSeccomp(t *testing.T) {
	_, err := ImageWidenings(types.Isolators{isolator(t, "os/linux/seccomp-remove-set", `{"set":["no_such_call"]}`)}, Consent{})
	if err == nil || !strings.Contains(err.Error(), "no_such_call") {
		t.Errorf("err = %v", err)
	}
}

func TestImageIsolatorsKept(t *testing.T) {
	image := types.Isolators{
		isolator(t, "os/linux/capabilities-retain-set", `{"set":["CAP_SYS_ADMIN"]}`),
		isolator(t, "os/linux/seccomp-remove-set", `{"set":["reboot"]}`),
		isolator(t, "resource/memory", `{"limit":"1G"}`),
	}
	// --caps-remove replaces the image's retain set; --seccomp mode=retain
	// its remove set.
	operator := types.Isolators{
		isolator(t, "os/linux/capabilities-remove-set", `{"set":["CAP_CHOWN"]}`),
		isolator(t, "os/linux/seccomp-retain-set", `{"set":["@rkt/default-whitelist"]}`),
	}
	kept := imageIsolatorsKept(image, operator)
	if len(kept) != 1 || kept[0].Name != "resource/memory" {
		t.Errorf("kept %v", kept)
	}
	if err := checkImageIsolators(kept, Consent{}, true); err != nil {
		t.Error(err)
	}
	if got := imageIsolatorsKept(image, nil); len(got) != 3 {
		t.Errorf("nothing replaced: kept %v", got)
	}
}
