package supervisor

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestConfigRoundTrip(t *testing.T) {
	cfg := &Config{
		UUID: "u-1", PodDir: "/var/lib/rkt/pods/run/u 1", Hostname: "rkt-u-1",
		Loopback: true, Debug: true, Epoch: 1234567890123, GracePeriod: 10 * time.Second,
		HandlerTimeout: time.Minute, ReadyLink: "/p/ready",
		Apps: []App{
			{Name: "a", Launch: []byte(`{"name":"a","env":["X=1\n2"]}`), NewSession: true,
				UnifiedCgroup: "/sys/fs/cgroup/unified/app-a", SupportsNotify: true,
				StatusFile: "/p/status/a", StartedFile: "/p/started/a",
				PreStart: &Handler{Launch: []byte(`{"name":"a","exec":["/pre"]}`), Exec: "/pre x"},
				PostStop: &Handler{Launch: []byte(`{"name":"a","exec":["/post"]}`), Exec: "/post"}},
			{Name: "b", Launch: []byte(`{"name":"b"}`), StatusFile: "/p/status/b", StartedFile: "/p/started/b"},
		},
	}
	data, err := cfg.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// What follows the configuration on the stream stays unread.
	r := bufio.NewReader(strings.NewReader(string(data) + StartLine + "\n"))
	got, err := Decode(r)
	if err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	if !reflect.DeepEqual(got, cfg) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, cfg)
	}
	if rest, _ := r.ReadString('\n'); rest != StartLine+"\n" {
		t.Errorf("after the configuration: %q", rest)
	}
}

func TestConfigRefusesNewlines(t *testing.T) {
	for _, cfg := range []*Config{
		{UUID: "u", PodDir: "/p\nx"},
		{UUID: "u", PodDir: "/p", Apps: []App{{Name: "a", Launch: []byte("{\n}")}}},
		{UUID: "u", PodDir: "/p", Hostname: "h\x00"},
	} {
		if _, err := cfg.Encode(); err == nil {
			t.Errorf("%+v encoded", cfg)
		}
	}
}

func TestDecodeBadInput(t *testing.T) {
	for _, in := range []string{
		"",                         // nothing: the setup failed
		"uuid u\npodDir /p\n",      // no end
		"uuid u\nbogus 1\nend\n",   // unknown key
		"uuid u\nstatus /s\nend\n", // app key before any app
		"uuid u\npodDir /p\ngrace ten\nend\n",
		"podDir /p\nend\n", // no UUID
	} {
		if cfg, err := Decode(bufio.NewReader(strings.NewReader(in))); err == nil {
			t.Errorf("%q decoded: %+v", in, cfg)
		}
	}
}

func TestMillis(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Microsecond:   "  1.50",
		123450 * time.Microsecond: "123.45",
		0:                         "  0.00",
	} {
		if got := Millis(d); got != want {
			t.Errorf("Millis(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestRelayed: what an app may not say for rkt is not relayed to systemd.
func TestRelayed(t *testing.T) {
	for _, m := range []string{"STATUS=x", "WATCHDOG=1", "STOPPING=1", "RELOADING=1", "ERRNO=2", "EXTEND_TIMEOUT_USEC=1", "WATCHDOG=trigger", "MONOTONIC_USEC=5"} {
		if !Relayed(m) {
			t.Errorf("%q is not relayed", m)
		}
	}
	for _, m := range []string{"MAINPID=1", "NOTIFYACCESS=all", "FDSTORE=1", "FDNAME=x", "FDSTOREREMOVE=1", "FDPOLL=0", "BARRIER=1", "READY=1", "garbage", "=x"} {
		if Relayed(m) {
			t.Errorf("%q is relayed", m)
		}
	}
}

// TestConfigListen: the sockets' count and each app's Listen survive
// Encode and Decode.
func TestConfigListen(t *testing.T) {
	in := &Config{UUID: "u", PodDir: "/p", ListenFds: 2, Apps: []App{{Name: "a", Listen: true}, {Name: "b"}}}
	data, err := in.Encode()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(bufio.NewReader(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	if out.ListenFds != 2 || !out.Apps[0].Listen || out.Apps[1].Listen {
		t.Errorf("decoded %+v", out)
	}
}
