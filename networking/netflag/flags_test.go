package netflag

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseNetFlag(t *testing.T) {
	for _, c := range []struct {
		in         string
		reqs       []Request
		host, none bool
		err        string
	}{
		{in: "", reqs: []Request{{Name: "default"}}},
		{in: "default", reqs: []Request{{Name: "default"}}},
		{in: "host", host: true},
		{in: "none", none: true},
		{in: "all", reqs: []Request{{Name: "all"}}},
		{in: "a,b:IP=10.1.2.3", reqs: []Request{{Name: "a"}, {Name: "b", Args: [][2]string{{"IP", "10.1.2.3"}}}}},
		{in: "a:IP=10.1.2.3;K=V;IgnoreUnknown=1", reqs: []Request{{Name: "a", Args: [][2]string{{"IP", "10.1.2.3"}, {"K", "V"}, {"IgnoreUnknown", "1"}}}}},
		{in: "all,foo:K=V", reqs: []Request{{Name: "all"}, {Name: "foo", Args: [][2]string{{"K", "V"}}}}},
		{in: "host,default", err: "cannot be combined"},
		{in: "none,a", err: "cannot be combined"},
		{in: "a,a", err: "named twice"},
		{in: "a,", err: "empty network name"},
		{in: "a:IP", err: "want KEY=VALUE"},
		{in: "a:", err: "empty argument list"},
		{in: "a:IP=300.1.1.1", err: "not an IP address"},
		{in: "host:K=V", err: "takes no arguments"},
		{in: "a b", err: "only letters"},
	} {
		reqs, host, none, err := ParseNetFlag(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrBadFlag) {
				t.Errorf("ParseNetFlag(%q) = %v, want an ErrBadFlag error with %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(reqs, c.reqs) || host != c.host || none != c.none {
			t.Errorf("ParseNetFlag(%q) = %v %v %v %v, want %v %v %v", c.in, reqs, host, none, err, c.reqs, c.host, c.none)
		}
	}
}

func TestRequestString(t *testing.T) {
	for _, s := range []string{"default", "a:IP=10.1.2.3;K=V"} {
		reqs, _, _, err := ParseNetFlag(s)
		if err != nil || len(reqs) != 1 || reqs[0].String() != s {
			t.Errorf("round trip of %q: %v %v", s, reqs, err)
		}
	}
}

func TestParsePortFlag(t *testing.T) {
	for _, c := range []struct {
		in   string
		want PortFlag
		err  string
	}{
		{in: "http:8080", want: PortFlag{Name: "http", HostPort: 8080}},
		{in: "http:127.0.0.1:8080", want: PortFlag{Name: "http", HostIP: "127.0.0.1", HostPort: 8080}},
		{in: "8080:80", want: PortFlag{HostPort: 8080, PodPort: 80, Protocol: "tcp"}},
		{in: "5353:53/udp", want: PortFlag{HostPort: 5353, PodPort: 53, Protocol: "udp"}},
		{in: "127.0.0.1:8080:80/tcp", want: PortFlag{HostIP: "127.0.0.1", HostPort: 8080, PodPort: 80, Protocol: "tcp"}},
		{in: "http", err: "wrong number"},
		{in: "http:0", err: "1 to 65535"},
		{in: "http:70000", err: "1 to 65535"},
		{in: "8080:80/sctp", err: "protocol"},
		{in: "http:8080/udp", err: "protocol of the image"},
		{in: "http:nothost:8080", err: "not an IP"},
		{in: "8080:x", err: "not a number"},
	} {
		got, err := ParsePortFlag(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, ErrBadFlag) {
				t.Errorf("ParsePortFlag(%q) = %+v, %v; want error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParsePortFlag(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

func TestResolvePorts(t *testing.T) {
	named := []ManifestPort{{Name: "http", Protocol: "tcp", Port: 80}, {Name: "dns", Protocol: "UDP", Port: 53}}
	flags := []PortFlag{{Name: "http", HostPort: 8080}, {Name: "dns", HostIP: "127.0.0.1", HostPort: 5353}, {HostPort: 9000, PodPort: 9, Protocol: "tcp"}}
	got, err := ResolvePorts(flags, named)
	want := []PortForward{
		{Name: "http", Protocol: "tcp", PodPort: 80, HostPort: 8080},
		{Name: "dns", Protocol: "udp", PodPort: 53, HostPort: 5353, HostIP: "127.0.0.1"},
		{Protocol: "tcp", PodPort: 9, HostPort: 9000},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ResolvePorts = %+v, %v; want %+v", got, err, want)
	}
	for _, c := range []struct {
		flags []PortFlag
		named []ManifestPort
		err   string
	}{
		{[]PortFlag{{Name: "ftp", HostPort: 21}}, named, "they name http, dns"},
		{[]PortFlag{{Name: "http", HostPort: 21}}, nil, "name no ports"},
		{[]PortFlag{{Name: "http", HostPort: 80}, {HostPort: 80, PodPort: 81, Protocol: "tcp"}}, named, "forwarded twice"},
		{[]PortFlag{{Name: "x", HostPort: 80}}, []ManifestPort{{Name: "x", Protocol: "sctp", Port: 1}}, "cannot be forwarded"},
	} {
		if _, err := ResolvePorts(c.flags, c.named); err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("ResolvePorts(%+v) = %v, want error with %q", c.flags, err, c.err)
		}
	}
	// Same port, different protocols: fine.
	if _, err := ResolvePorts([]PortFlag{{HostPort: 53, PodPort: 53, Protocol: "tcp"}, {HostPort: 53, PodPort: 53, Protocol: "udp"}}, nil); err != nil {
		t.Error(err)
	}
}
