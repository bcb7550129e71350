package networking

import "testing"

func TestHostAddress(t *testing.T) {
	confGW := `{"cniVersion":"1.0.0","name":"g","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.10.4.0/24","gateway":"10.10.4.254"}]]}}]}`
	cfg := netdConfig(t, map[string]string{"a.conf": confA, "g.conflist": confGW})
	for _, c := range []struct {
		net, want string
	}{
		{"default", "172.16.28.1"},
		{"default-restricted", "172.31.0.1"},
		// default-restricted is added after a net.d network: the host's
		// address there is the one the metadata service listens on.
		{"a", "172.31.0.1"},
		{"a,default", "172.16.28.1"},
	} {
		reqs, _, _, err := ParseNetFlag(c.net)
		if err != nil {
			t.Fatal(err)
		}
		ip, err := cfg.HostAddress(reqs)
		if err != nil || ip.String() != c.want {
			t.Errorf("--net=%s: %v %v, want %s", c.net, ip, err, c.want)
		}
	}
	// Without built-in networks (the user's own default): its gateway, or
	// its subnet's first address.
	own := netdConfig(t, map[string]string{
		"default.conf":                `{"cniVersion":"0.4.0","name":"default","type":"ptp","ipam":{"type":"host-local","subnet":"10.30.0.0/16"}}`,
		"default-restricted.conflist": `{"cniVersion":"1.0.0","name":"default-restricted","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.10.4.0/24","gateway":"10.10.4.254"}]]}}]}`,
	})
	for net, want := range map[string]string{"default": "10.30.0.1", "default-restricted": "10.10.4.254"} {
		reqs, _, _, _ := ParseNetFlag(net)
		if ip, err := own.HostAddress(reqs); err != nil || ip.String() != want {
			t.Errorf("user's %s: %v %v, want %s", net, ip, err, want)
		}
	}
}
