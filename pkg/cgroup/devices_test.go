package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runDeviceProgram interprets prog (the few eBPF instructions
// deviceProgram emits) on a device context and returns r0.
func runDeviceProgram(t *testing.T, prog []bpfInsn, typ, access, major, minor uint32) uint64 {
	t.Helper()
	ctx := []uint32{access<<16 | typ, major, minor}
	var r [11]uint64
	for pc, steps := 0, 0; ; pc, steps = pc+1, steps+1 {
		if pc < 0 || pc >= len(prog) || steps > 10000 {
			t.Fatalf("program runs off its end at %d", pc)
		}
		in := prog[pc]
		dst, src := in.regs&0xf, in.regs>>4
		switch in.code {
		case bpfLDX | bpfMEM | bpfW:
			if src != 1 || in.off%4 != 0 || int(in.off/4) >= len(ctx) {
				t.Fatalf("insn %d: bad context load %+v", pc, in)
			}
			r[dst] = uint64(ctx[in.off/4])
		case bpfALU | bpfMOV | bpfX:
			r[dst] = uint64(uint32(r[src]))
		case bpfALU | bpfAND | bpfK:
			r[dst] = uint64(uint32(r[dst]) & uint32(in.imm))
		case bpfALU | bpfRSH | bpfK:
			r[dst] = uint64(uint32(r[dst]) >> uint32(in.imm))
		case bpfALU64 | bpfMOV | bpfK:
			r[dst] = uint64(int64(in.imm))
		case bpfJMP | bpfJNE | bpfK:
			if r[dst] != uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case bpfJMP | bpfEXIT:
			return r[0]
		default:
			t.Fatalf("insn %d: opcode %#x not expected", pc, in.code)
		}
	}
}

// allowedByRules is the reference: some rule covers the request.
func allowedByRules(rules []Device, typ byte, access string, major, minor int64) bool {
	for _, d := range rules {
		if (d.Type == 'a' || d.Type == typ) && strings.Trim(access, d.Access) == "" &&
			(d.Major == AnyNumber || d.Major == major) && (d.Minor == AnyNumber || d.Minor == minor) {
			return true
		}
	}
	return false
}

func TestDeviceProgram(t *testing.T) {
	rules := append(append([]Device(nil), DefaultDevices...),
		Device{Type: 'b', Major: 8, Minor: AnyNumber, Access: "r"},
		Device{Type: 'a', Major: 10, Minor: 200, Access: "rw"})
	prog := deviceProgram(rules)
	types := map[byte]uint32{'c': devcgChar, 'b': devcgBlock}
	accesses := []string{"r", "w", "m", "rw", "rm", "wm", "rwm"}
	numbers := [][2]int64{{1, 3}, {1, 1}, {1, 5}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, 0}, {136, 77}, {7, 0}, {8, 0}, {8, 17}, {10, 200}, {10, 229}, {0, 0}}
	allowed := 0
	for typ, tv := range types {
		for _, acc := range accesses {
			for _, n := range numbers {
				want := allowedByRules(rules, typ, acc, n[0], n[1])
				got := runDeviceProgram(t, prog, tv, uint32(accessBits(acc)), uint32(n[0]), uint32(n[1]))
				if (got == 1) != want || got > 1 {
					t.Errorf("%c %d:%d %s: program returns %d, want allowed=%v", typ, n[0], n[1], acc, got, want)
				}
				if want {
					allowed++
				}
			}
		}
	}
	if allowed == 0 {
		t.Fatal("the grid allows nothing: the test checks nothing")
	}
	// The default list: the pod's /dev, and nothing to create or open
	// beyond it.
	def := deviceProgram(DefaultDevices)
	for _, c := range []struct {
		typ          uint32
		acc          string
		major, minor uint32
		allow        bool
	}{
		{devcgChar, "rw", 1, 3, true}, {devcgChar, "m", 1, 3, true}, {devcgChar, "rw", 136, 4, true},
		{devcgChar, "rw", 5, 2, true}, {devcgBlock, "m", 7, 0, false}, {devcgBlock, "r", 7, 0, false},
		{devcgChar, "r", 1, 1, false}, {devcgChar, "m", 10, 200, false}, {devcgBlock, "rw", 1, 3, false},
	} {
		if got := runDeviceProgram(t, def, c.typ, uint32(accessBits(c.acc)), c.major, c.minor); (got == 1) != c.allow {
			t.Errorf("default: type %d %d:%d %s: got %d, want allowed=%v", c.typ, c.major, c.minor, c.acc, got, c.allow)
		}
	}
}

func TestDeviceString(t *testing.T) {
	for d, want := range map[Device]string{
		{Type: 'c', Major: 1, Minor: 3, Access: "rwm"}:               "c 1:3 rwm",
		{Type: 'c', Major: 136, Minor: AnyNumber, Access: "rwm"}:     "c 136:* rwm",
		{Type: 'a', Major: AnyNumber, Minor: AnyNumber, Access: "m"}: "a *:* m",
	} {
		if got := d.String(); got != want {
			t.Errorf("%+v: %q, want %q", d, got, want)
		}
	}
	for _, bad := range []Device{{Type: 'x', Major: 1, Minor: 1, Access: "r"}, {Type: 'c', Major: 1, Minor: 1, Access: "rx"}, {Type: 'c', Major: -2, Minor: 1, Access: "r"}} {
		if bad.check() == nil {
			t.Errorf("%+v: accepted", bad)
		}
	}
}

// TestLimitDevicesV1Fake: the v1 files are written in order: deny all,
// then one allow rule per line.
func TestLimitDevicesV1Fake(t *testing.T) {
	hs := fakeFS(t, "-", "cpu,cpuacct", "memory", "devices")
	p := NewPod(hs, "u9", false)
	if err := p.Create(false); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddApp("web", Limits{}); err != nil {
		t.Fatal(err)
	}
	if err := p.LimitDevices("web", DefaultDevices); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(hs[0].Mount), "devices", "caller", "rkt-u9", "app-web")
	if got := read(t, filepath.Join(dir, "devices.deny")); got != "a" {
		t.Errorf("devices.deny = %q, want a", got)
	}
	var want []string
	for _, d := range DefaultDevices {
		want = append(want, d.String())
	}
	if got := read(t, filepath.Join(dir, "devices.allow")); got != strings.Join(want, "\n") {
		t.Errorf("devices.allow = %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(hs[0].Mount), "cpu,cpuacct", "caller", "rkt-u9", "app-web", "devices.deny")); err == nil {
		t.Errorf("device rules written outside the devices hierarchy")
	}
	if err := p.LimitDevices("web", []Device{{Type: 'q', Access: "r"}}); err == nil {
		t.Errorf("a bad rule was accepted")
	}
	// Neither a v1 devices hierarchy nor a unified one: no way to limit.
	q := NewPod(fakeFS(t, "-", "memory"), "u10", false)
	if err := q.Create(false); err != nil {
		t.Fatal(err)
	}
	if _, err := q.AddApp("web", Limits{}); err != nil {
		t.Fatal(err)
	}
	if err := q.LimitDevices("web", DefaultDevices); !errors.Is(err, ErrUnavailable) {
		t.Errorf("without a devices controller: %v, want ErrUnavailable", err)
	}
}
