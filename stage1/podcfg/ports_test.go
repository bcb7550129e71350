package podcfg

import (
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/networking"
)

func TestPortsRange(t *testing.T) {
	apps := []*App{{imagePorts: []types.Port{
		{Name: "web", Protocol: "tcp", Port: 80, Count: 1},
		{Name: "rtp", Protocol: "udp", Port: 5000, Count: 3},
	}}}
	got, err := ports([]types.ExposedPort{
		{Name: "web", HostPort: 8080, HostIP: net.ParseIP("127.0.0.1")},
		{Name: "rtp", HostPort: 15000},
	}, apps)
	if err != nil {
		t.Fatal(err)
	}
	want := []networking.PortForward{
		{Name: "web", Protocol: "tcp", PodPort: 80, HostPort: 8080, HostIP: "127.0.0.1"},
		{Name: "rtp", Protocol: "udp", PodPort: 5000, HostPort: 15000},
		{Name: "rtp", Protocol: "udp", PodPort: 5001, HostPort: 15001},
		{Name: "rtp", Protocol: "udp", PodPort: 5002, HostPort: 15002},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

func TestPortsBad(t *testing.T) {
	apps := []*App{{imagePorts: []types.Port{
		{Name: "a", Protocol: "tcp", Port: 80, Count: 4},
		{Name: "b", Protocol: "tcp", Port: 90, Count: 1},
		{Name: "s", Protocol: "sctp", Port: 7, Count: 1},
	}}}
	for _, c := range []struct {
		eps  []types.ExposedPort
		want string
	}{
		{[]types.ExposedPort{{Name: "a", HostPort: 65534}}, "a range of 4"},
		{[]types.ExposedPort{{Name: "a", HostPort: 8000}, {Name: "b", HostPort: 8002}}, "both forward host port 8002"},
		{[]types.ExposedPort{{Name: "s", HostPort: 7}}, "cannot be forwarded"},
		{[]types.ExposedPort{{Name: "zz", HostPort: 7}}, "no app's image names a port zz"},
		{[]types.ExposedPort{{Name: "b", HostPort: 0}}, "not a port number"},
	} {
		_, err := ports(c.eps, apps)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", c.eps, err, c.want)
		}
	}
}
