package networking

import (
	"reflect"
	"strings"
	"testing"
)

func TestDNSFromNets(t *testing.T) {
	nis := []NetInfo{
		{DNS: DNS{Nameservers: []string{"10.1.0.53"}, Search: []string{"one.test"}}},
		{},
		{DNS: DNS{Nameservers: []string{"10.2.0.53", "10.1.0.53"}, Domain: "two.test", Search: []string{"one.test", "two.test"}, Options: []string{"ndots:1"}}},
	}
	got := DNSFromNets(nis)
	want := DNS{Nameservers: []string{"10.1.0.53", "10.2.0.53"}, Domain: "two.test", Search: []string{"one.test", "two.test"}, Options: []string{"ndots:1"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DNSFromNets = %+v, want %+v", got, want)
	}
	if !DNSFromNets(nil).Empty() {
		t.Error("no networks, no DNS")
	}
}

func TestHostsFileWithNets(t *testing.T) {
	entries := []HostsEntry{{IP: "10.0.0.1", Hosts: []string{"db", "db.local"}}}
	nis := []NetInfo{{Name: "default", IP: "172.16.28.5"}}
	got := string(HostsFile(entries[:1], "rkt-1234", nis))
	for _, line := range []string{"127.0.0.1\tlocalhost", "::1\tlocalhost", "172.16.28.5\trkt-1234\n", "10.0.0.1\tdb db.local\n"} {
		if !strings.Contains(got, line) {
			t.Errorf("hosts file lacks %q:\n%s", line, got)
		}
	}
	if got := string(HostsFile(nil, "solo", nil)); !strings.Contains(got, "127.0.1.1\tsolo\n") {
		t.Errorf("without networks the hostname maps to 127.0.1.1:\n%s", got)
	}
	if got := string(HostsFile(nil, "r", []NetInfo{{IP: "172.31.0.2", Auto: true}})); !strings.Contains(got, "127.0.1.1\tr\n") {
		t.Errorf("the automatic default-restricted address is not the pod's name:\n%s", got)
	}
}
