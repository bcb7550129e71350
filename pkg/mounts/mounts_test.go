package mounts

import (
	"strings"
	"testing"
)

const table = `22 1 8:1 / / rw - ext4 /dev/sda rw
30 22 0:40 / /var/lib/rkt/pods/run/u1/stage1/rootfs/opt/stage2/a/rootfs rw - overlay overlay rw
31 30 0:41 / /var/lib/rkt/pods/run/u1/stage1/rootfs/opt/stage2/a/rootfs/proc rw - proc proc rw
32 30 0:42 / /var/lib/rkt/pods/run/u1/stage1/rootfs/opt/stage2/a/rootfs/dev rw - tmpfs tmpfs rw
33 22 0:43 / /var/lib/rkt/pods/run/u10 rw - tmpfs tmpfs rw
34 22 0:44 / /var/lib/rkt/pods/run/u1/with\040space rw - tmpfs tmpfs rw
35 30 0:45 / /var/lib/rkt/pods/run/u1/stage1/rootfs/opt/stage2/a/rootfs/dev rw - tmpfs tmpfs rw
`

func TestBelow(t *testing.T) {
	got, err := Below(strings.NewReader(table), "/var/lib/rkt/pods/run/u1")
	if err != nil {
		t.Fatal(err)
	}
	root := "/var/lib/rkt/pods/run/u1/stage1/rootfs/opt/stage2/a/rootfs"
	want := []string{
		root + "/dev", // the later of two stacked mounts first
		root + "/dev",
		root + "/proc",
		root,
		"/var/lib/rkt/pods/run/u1/with space",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Below =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
