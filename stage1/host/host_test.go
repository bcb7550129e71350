package host

import "testing"

func TestCloneLine(t *testing.T) {
	for _, c := range []CloneLine{{}, {NewNet: true, NewIPC: true}, {Interactive: true, Debug: true}, {UUID: "0c2f8b1e-aaaa", LogSize: 65536, LogPrefix: true}} {
		got, ok := ParseCloneLine(c.String())
		if !ok || got != c {
			t.Errorf("%q: parsed %+v %v", c.String(), got, ok)
		}
	}
	for _, bad := range []string{"", "clone net=1 bogus=1", "clone logsize=x", "start", "stage1: error"} {
		if c, ok := ParseCloneLine(bad); ok {
			t.Errorf("%q parsed: %+v", bad, c)
		}
	}
}
