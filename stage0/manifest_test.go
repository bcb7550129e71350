package stage0

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
)

func testRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1001::/home/web:/bin/sh\n",
		"etc/group":  "root:x:0:\nweb:x:1001:\n",
		"bin/app":    "#!/bin/sh\n",
		"data/file":  "not executable",
	} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode := os.FileMode(0o644)
		if name == "bin/app" {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	// An absolute symlink must resolve inside the root, not on the host.
	os.Symlink("/bin/app", filepath.Join(root, "bin/link"))
	os.Symlink("/etc/shadow", filepath.Join(root, "bin/hostlink"))
	return root
}

func TestResolveIDs(t *testing.T) {
	root := testRootfs(t)
	app := &types.App{User: "web", Group: "web"}
	if err := resolveIDs(root, app); err != nil {
		t.Fatal(err)
	}
	if app.User != "1000" || app.Group != "1001" {
		t.Errorf("user/group = %s/%s, want 1000/1001", app.User, app.Group)
	}
	app = &types.App{User: "42", Group: "0"}
	if err := resolveIDs(root, app); err != nil || app.User != "42" {
		t.Errorf("numeric: %v %s", err, app.User)
	}
	for _, a := range []*types.App{{User: "nobody", Group: "0"}, {User: "0", Group: "nogroup"}} {
		err := resolveIDs(root, a)
		if err == nil || !strings.Contains(err.Error(), "not found in image's /etc/") {
			t.Errorf("%+v: err = %v", a, err)
		}
	}
}

func TestCheckExec(t *testing.T) {
	root := testRootfs(t)
	for exe, want := range map[string]string{
		"/bin/app":      "",
		"/bin/link":     "",
		"app":           "",
		"/bin/nope":     "not found",
		"nope":          "not found in the image's PATH",
		"/data/file":    "not executable",
		"/bin/hostlink": "not found", // /etc/shadow of the image, not the host's
		"/etc":          "not a regular file",
	} {
		err := checkExec(root, &types.App{Exec: types.Exec{exe}})
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: err = %v, want %q", exe, err, want)
		}
	}
}

func TestMergeEnvPrecedence(t *testing.T) {
	t.Setenv("FROM_PARENT", "parent")
	t.Setenv("ALL", "parent")
	spec := &PodSpec{InheritEnv: true, SetEnvFile: []string{"ALL=file", "FILE=file"}, SetEnv: []string{"ALL=setenv"}}
	image := types.Environment{{Name: "ALL", Value: "image"}, {Name: "IMAGE", Value: "image"}}
	env := mergeEnv(spec, image, []string{"APP=app"})
	for k, want := range map[string]string{"FROM_PARENT": "parent", "ALL": "setenv", "FILE": "file", "IMAGE": "image", "APP": "app"} {
		if got, _ := env.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// systemd's variables for rkt's own process are not inherited.
	t.Setenv("NOTIFY_SOCKET", "/run/systemd/notify")
	t.Setenv("LISTEN_FDS", "1")
	t.Setenv("WATCHDOG_PID", "1")
	env = mergeEnv(spec, nil, nil)
	for _, k := range []string{"NOTIFY_SOCKET", "LISTEN_FDS", "WATCHDOG_PID"} {
		if v, ok := env.Get(k); ok {
			t.Errorf("--inherit-env passed %s=%s on", k, v)
		}
	}
	env = mergeEnv(&PodSpec{}, nil, []string{"ALL=app"})
	if _, ok := env.Get("FROM_PARENT"); ok {
		t.Error("environment inherited without --inherit-env")
	}
}

func TestCheckVolumes(t *testing.T) {
	name := func(s string) types.ACName { return *types.MustACName(s) }
	app := &types.App{MountPoints: []types.MountPoint{{Name: name("cache"), Path: "/cache"}}}
	pm := schema.BlankPodManifest()
	pm.Apps = schema.AppList{{Name: name("a"), App: app, Mounts: []schema.Mount{{Volume: name("cache"), Path: "/cache"}}}}
	if err := checkVolumes(pm); err != nil {
		t.Fatal(err)
	}
	if len(pm.Volumes) != 1 || pm.Volumes[0].Kind != "empty" {
		t.Errorf("an image mount point without a volume should get an empty one: %+v", pm.Volumes)
	}
	if _, err := pm.Volumes[0].MarshalJSON(); err != nil {
		t.Errorf("the empty volume of an image mount point cannot be written: %v", err)
	}
	pm.Volumes = append(pm.Volumes, types.Volume{Name: name("unused"), Kind: "empty"})
	if err := checkVolumes(pm); err == nil || !strings.Contains(err.Error(), `volume "unused" is not mounted`) {
		t.Errorf("unused volume: %v", err)
	}
	pm = schema.BlankPodManifest()
	pm.Apps = schema.AppList{{Name: name("a"), App: &types.App{}, Mounts: []schema.Mount{{Volume: name("x"), Path: "/x"}}}}
	if err := checkVolumes(pm); err == nil || !strings.Contains(err.Error(), "no --volume x") {
		t.Errorf("mount without volume: %v", err)
	}
}

func TestAppExec(t *testing.T) {
	image := types.Exec{"/bin/sh", "-c", "echo image"}
	for _, tc := range []struct {
		image types.Exec
		exec  string
		args  []string
		want  string // "" = an error
	}{
		{image, "", nil, "/bin/sh|-c|echo image"},
		// --exec drops the image's arguments: /bin/echo prints nothing
		// of the image's "-c echo image".
		{image, "/bin/echo", nil, "/bin/echo"},
		{image, "/bin/echo", []string{"hi"}, "/bin/echo|hi"},
		{image, "/bin/echo", []string{}, "/bin/echo"},
		{image, "", []string{"-c", "echo mine"}, "/bin/sh|-c|echo mine"},
		{nil, "", []string{"x"}, ""},
		{nil, "", nil, ""},
		{nil, "/bin/true", nil, "/bin/true"},
	} {
		got, err := appExec(tc.image, tc.exec, tc.args)
		if tc.want == "" {
			if err == nil {
				t.Errorf("appExec(%q, %q, %q) = %q, want an error", tc.image, tc.exec, tc.args, got)
			}
			continue
		}
		if err != nil || strings.Join(got, "|") != tc.want {
			t.Errorf("appExec(%q, %q, %q) = %q, %v; want %s", tc.image, tc.exec, tc.args, got, err, tc.want)
		}
	}
}
