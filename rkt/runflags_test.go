package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseApps(t *testing.T) {
	pf := newPodFlags("new")
	apps, err := parseApps([]string{
		"example.com/a:1", "--cpu=750m", "--memory", "128M", "--net=none", "--name=web", "--environment=A=1", "--environment", "B=2",
		"--", "-x", "--y", "---",
		"example.com/b", "--user=1000", "--volume", "data,kind=empty", "--mount=volume=data,target=/data", "--readonly-rootfs",
	}, pf, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 {
		t.Fatalf("got %d apps, want 2", len(apps))
	}
	a, b := apps[0], apps[1]
	if a.Image != "example.com/a:1" || a.Name != "web" || !reflect.DeepEqual(a.Args, []string{"-x", "--y"}) {
		t.Errorf("app a = %+v", a)
	}
	if !reflect.DeepEqual(a.Environment, []string{"A=1", "B=2"}) {
		t.Errorf("environment = %v", a.Environment)
	}
	if len(a.Isolators) != 2 || a.Isolators[0].Name != "resource/cpu" || a.Isolators[1].Name != "resource/memory" {
		t.Errorf("isolators = %+v", a.Isolators)
	}
	if pf.net != "none" {
		t.Errorf("a pod flag after an image was not applied: net = %q", pf.net)
	}
	if b.Image != "example.com/b" || b.User != "1000" || !b.ReadOnlyRootFS || len(b.Mounts) != 1 || b.Mounts[0].Path != "/data" {
		t.Errorf("app b = %+v", b)
	}
	if !reflect.DeepEqual(pf.volumes, []string{"data,kind=empty"}) {
		t.Errorf("volumes = %v", pf.volumes)
	}
}

func TestParseAppsKeepsPodFlagsParsedBefore(t *testing.T) {
	pf := newPodFlags("new")
	pf.net, pf.volumes = "none", []string{"v1,kind=empty"}
	if _, err := parseApps([]string{"img", "--volume=v2,kind=empty"}, pf, true); err != nil {
		t.Fatal(err)
	}
	if pf.net != "none" || !reflect.DeepEqual(pf.volumes, []string{"v1,kind=empty", "v2,kind=empty"}) {
		t.Errorf("net = %q, volumes = %v", pf.net, pf.volumes)
	}
}

func TestParseAppsErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"img", "--memory=lots"}, "--memory"},
		{[]string{"img", "--cpu=-1"}, "must be positive"},
		{[]string{"img", "--cpu=0"}, "must be positive"},
		{[]string{"img", "--memory=18446744073714794496"}, "--memory"},
		{[]string{"img", "--memory=1"}, "less than 8Mi"},
		{[]string{"img", "--cpu=1m"}, "less than 10m"},
		{[]string{"img", "--cpu=18446744073709551616"}, "--cpu"},
		{[]string{"img", "--caps-retain=CAP_KILL", "--caps-remove=CAP_CHOWN"}, "cannot be used together"},
		{[]string{"img", "--caps-retain=CAP_NOPE"}, "--caps-retain"},
		{[]string{"img", "--seccomp=mode=maybe,read"}, "mode=retain"},
		{[]string{"img", "--mount=volume=x"}, "target"},
		{[]string{"img", "--oom-score-adj=2000"}, "--oom-score-adj"},
		{[]string{"img", "--pids-limit=0"}, "--pids-limit"},
		{[]string{"img", "--bogus"}, "unknown flag"},
		{[]string{"img", "--supplementary-gids=a"}, "not a group ID"},
	} {
		_, err := parseApps(tc.args, newPodFlags("new"), true)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

func TestPodSpecErrors(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*podFlags)
		want string
	}{
		{func(p *podFlags) { p.net = "default,default" }, "--net"},
		{func(p *podFlags) { p.net = "host"; p.ports = []string{"8080:80"} }, "--port needs a pod network"},
		{func(p *podFlags) { p.ports = []string{"80"} }, "--port"},
		{func(p *podFlags) { p.dns = []string{"host", "1.1.1.1"} }, "--dns=host"},
		{func(p *podFlags) { p.hostsEntries = []string{"nope"} }, "--hosts-entry"},
		{func(p *podFlags) { p.volumes = []string{"v,kind=host,source=rel"} }, "absolute"},
		{func(p *podFlags) { p.volumes = []string{"v,kind=nope"} }, "--volume"},
		{func(p *podFlags) { p.setEnv = []string{"NOEQUALS"} }, "K=V"},
		{func(p *podFlags) { p.ipc = "x" }, "--ipc"},
	} {
		pf := newPodFlags("new")
		tc.mod(pf)
		if _, err := pf.podSpec(nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v, want %q", err, tc.want)
		}
	}
}
