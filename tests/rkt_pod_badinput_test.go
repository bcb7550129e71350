package tests

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/tests/testutils"
)

// Bad input to rkt run and rkt prepare: each must exit 254 with a message
// that says what is wrong, and leave no pod directory behind.

// checkBadInput runs verb ("run" or "prepare") with the stub stage1, the
// pod flags podFlags, the test app and the app flags appFlags, and wants
// exit 254, every string of want in stderr, and no pod in any phase.
func checkBadInput(t *testing.T, e *podEnv, verb string, podFlags, appFlags []string, want ...string) {
	t.Helper()
	args := e.podArgs(verb, nil, podFlags...)
	args = append(args, appFlags...)
	r := e.Run(args...)
	if r.Exit != 254 {
		t.Errorf("rkt %s: want exit 254, got %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Exit, r.Stdout, r.Stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.Stderr, w) {
			t.Errorf("rkt %s: stderr %q does not say %q", verb, r.Stderr, w)
		}
	}
	if strings.Contains(r.Stdout, stubRan) {
		t.Errorf("rkt %s: stage1 ran despite the bad input", verb)
	}
	if strings.Count(r.Stderr, "\n") > 12 {
		t.Errorf("rkt %s: a bad argument should give a short message, got %d lines:\n%s", verb, strings.Count(r.Stderr, "\n"), r.Stderr)
	}
	e.requireNoPods()
}

// badInputVerbs runs fn for rkt run and rkt prepare, each in a fresh
// context.
func badInputVerbs(t *testing.T, fn func(t *testing.T, e *podEnv, verb string)) {
	for _, verb := range []string{"run", "prepare"} {
		t.Run(verb, func(t *testing.T) { fn(t, newPodEnv(t), verb) })
	}
}

func TestPodBadInputUnknownImage(t *testing.T) {
	badInputVerbs(t, func(t *testing.T, e *podEnv, verb string) {
		for _, c := range []struct {
			image string
			want  []string
		}{
			{"/nonexistent/app.aci", []string{"/nonexistent/app.aci", "does not exist"}},
			{"sha512-" + strings.Repeat("0", 64), []string{"sha512-000000000000"}},
			// --pull-policy=never: no discovery, no network.
			{"example.invalid/no-such-app:1.0", []string{"example.invalid/no-such-app", "fetch it first"}},
		} {
			args := []string{"--insecure-options=image", verb, "--stage1-path=" + e.stage1, "--pull-policy=never", c.image}
			r := e.Run(args...)
			if r.Exit != 254 {
				t.Errorf("rkt %s: want exit 254, got %d\nstderr: %s", strings.Join(args, " "), r.Exit, r.Stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("rkt %s %s: stderr %q does not say %q", verb, c.image, r.Stderr, w)
				}
			}
			e.requireNoPods()
		}
	})
}

func TestPodBadInputResourceFlags(t *testing.T) {
	badInputVerbs(t, func(t *testing.T, e *podEnv, verb string) {
		checkBadInput(t, e, verb, nil, []string{"--memory=lots"}, "--memory", "lots")
		checkBadInput(t, e, verb, nil, []string{"--cpu=-1"}, "--cpu", "-1")
		checkBadInput(t, e, verb, nil, []string{"--cpu=0.5x"}, "--cpu")
		checkBadInput(t, e, verb, nil, []string{"--memory=-128M"}, "--memory")
		checkBadInput(t, e, verb, nil, []string{"--cpu-shares=many"}, "--cpu-shares")
		// Values beyond 2^63 used to wrap (this one to a 5 MiB limit).
		checkBadInput(t, e, verb, nil, []string{"--memory=18446744073714794496"}, "--memory", "18446744073714794496", "out of range")
		checkBadInput(t, e, verb, nil, []string{"--cpu=18446744073709551616"}, "--cpu", "out of range")
		checkBadInput(t, e, verb, nil, []string{"--memory=1e400"}, "--memory", "out of range")
		// Limits nothing can run in.
		checkBadInput(t, e, verb, nil, []string{"--memory=1"}, "--memory", "less than 8Mi")
		checkBadInput(t, e, verb, nil, []string{"--cpu=1m"}, "--cpu", "less than 10m")
	})
}

func TestPodBadInputVolumeWithoutTarget(t *testing.T) {
	badInputVerbs(t, func(t *testing.T, e *podEnv, verb string) {
		// A volume no app mounts.
		checkBadInput(t, e, verb, []string{"--volume=data,kind=empty"}, nil, `volume "data"`, "--mount")
		// A mount without a target.
		checkBadInput(t, e, verb, []string{"--volume=data,kind=empty"}, []string{"--mount=volume=data"}, "--mount", "target")
		// A mount of a volume that does not exist.
		checkBadInput(t, e, verb, nil, []string{"--mount=volume=nothere,target=/mnt"}, "nothere", "--volume")
	})
}

func TestPodBadInputMissingExec(t *testing.T) {
	badInputVerbs(t, func(t *testing.T, e *podEnv, verb string) {
		checkBadInput(t, e, verb, nil, []string{"--exec=/bin/no-such-binary"}, "/bin/no-such-binary", "not found")
		checkBadInput(t, e, verb, nil, []string{"--exec=no-such-command"}, "no-such-command", "PATH")
		// A directory is not an executable.
		checkBadInput(t, e, verb, nil, []string{"--exec=/etc"}, "/etc", "not a regular file")
	})
}

func TestPodBadInputUnknownUser(t *testing.T) {
	badInputVerbs(t, func(t *testing.T, e *podEnv, verb string) {
		checkBadInput(t, e, verb, nil, []string{"--user=nosuchuser"}, `"nosuchuser"`, "/etc/passwd")
		checkBadInput(t, e, verb, nil, []string{"--group=nosuchgroup"}, `"nosuchgroup"`, "/etc/group")
		checkBadInput(t, e, verb, nil, []string{"--user=-5"}, "-5")
	})
}

// TestPodBadInputUUIDFileSave: a --uuid-file-save that cannot be written
// fails the command, and the pod prepared for it must not stay behind as
// an aborted prepare.
func TestPodBadInputUUIDFileSave(t *testing.T) {
	badInputVerbs(t, func(t *testing.T, e *podEnv, verb string) {
		checkBadInput(t, e, verb, []string{"--uuid-file-save=/nonexistent/dir/uuid"}, nil, "--uuid-file-save", "/nonexistent/dir/uuid")
	})
}

// TestPodBadInputStage1: a stage1 image that cannot work is refused
// before a pod is made.
func TestPodBadInputStage1(t *testing.T) {
	const anno = "coreos.com/rkt/stage1/"
	for _, c := range []struct {
		name  string
		annos map[string]string
		want  []string
	}{
		{"no run entrypoint", map[string]string{anno + "run": ""}, []string{anno + "run"}},
		{"bad interface version", map[string]string{anno + "interface-version": "six"}, []string{"interface-version", `"six"`}},
		{"relative entrypoint", map[string]string{anno + "run": "init"}, []string{anno + "run", "absolute"}},
		{"entrypoint outside", map[string]string{anno + "run": "/../../init"}, []string{anno + "run"}},
		{"entrypoint not in the image", map[string]string{anno + "run": "/missing"}, []string{"/missing"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newPodEnv(t)
			e.stage1 = stubStage1With(t, c.annos)
			for _, verb := range []string{"run", "prepare"} {
				if c.name == "entrypoint not in the image" && verb == "prepare" {
					continue // prepare does not look at the entrypoint's file
				}
				checkBadInput(t, e, verb, nil, nil, c.want...)
			}
		})
	}
}

// TestPodBadInputAppName: names the pod manifest cannot hold (upper case,
// path separators, a leading dash) are refused with the flag's name.
func TestPodBadInputAppName(t *testing.T) {
	badInputVerbs(t, func(t *testing.T, e *podEnv, verb string) {
		for _, name := range []string{"UPPER", "a/b", "../../x", "-x", "a_b", "x\x1b]0;pwned\x07"} {
			checkBadInput(t, e, verb, nil, []string{"--name=" + name}, "--name", "not an app name")
		}
	})
}

// TestPodBadInputEnvironment: variable names that are not identifiers.
func TestPodBadInputEnvironment(t *testing.T) {
	badInputVerbs(t, func(t *testing.T, e *podEnv, verb string) {
		checkBadInput(t, e, verb, []string{"--set-env=A B=1"}, nil, "--set-env", `"A B"`, "not a variable name")
		checkBadInput(t, e, verb, nil, []string{"--environment=1X=1"}, "--environment", `"1X"`, "not a variable name")
		checkBadInput(t, e, verb, []string{"--set-env==1"}, nil, "--set-env", "not a variable name")
		envFile := filepath.Join(t.TempDir(), "env")
		if err := os.WriteFile(envFile, []byte("# comment\nA=1\nexport D=1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		checkBadInput(t, e, verb, []string{"--set-env-file=" + envFile}, nil, envFile+":3", `"export D"`, "drop \"export\"")
	})
}

// TestPodImageMountPointGetsEmptyVolume: an image's mountPoints without a
// --volume get an empty volume (docs/volumes.md), in run and prepare; the
// pod runs.
func TestPodImageMountPointGetsEmptyVolume(t *testing.T) {
	e := newPodEnv(t)
	es, err := testutils.BusyboxEntries()
	if err != nil {
		t.Fatal(err)
	}
	a := testutils.ACI{
		Image: testutils.Image{Name: "rkt.dev/mountpoint-app", Labels: map[string]string{"version": "1.0.0"},
			Exec: []string{"/bin/true"}, MountPoints: []testutils.MountPoint{{Name: "cache", Path: "/var/cache/app"}}},
		Entries: es, Compression: testutils.CompressionNone,
	}
	e.app = filepath.Join(t.TempDir(), "mountpoint.aci")
	if err := a.WriteFile(e.app); err != nil {
		t.Fatal(err)
	}
	uuid := e.prepare()
	pm := e.MustRun("cat-manifest", uuid)
	if !strings.Contains(pm, `"cache"`) || !strings.Contains(pm, `"empty"`) {
		t.Errorf("pod manifest has no empty volume for the image's mount point:\n%s", pm)
	}
	r := e.Run(e.podArgs("run", nil)...)
	if r.Exit != 0 || !strings.Contains(r.Stdout, stubRan) {
		t.Errorf("rkt run of an image with a mount point: exit %d\nstdout: %s\nstderr: %s", r.Exit, r.Stdout, r.Stderr)
	}
}

// TestPodInterruptedWhileWaitingForTreeLock: rkt prepare and rkt run
// that wait for an image tree someone holds exclusively (an image
// removal) and get SIGINT exit 254 and leave no pod behind.
func TestPodInterruptedWhileWaitingForTreeLock(t *testing.T) {
	e := newPodEnv(t)
	e.MustRun("rm", e.prepare()) // fetch both images
	locks, err := filepath.Glob(filepath.Join(e.Dir, "cas", "locks", "tree-*"))
	if err != nil || len(locks) == 0 {
		t.Fatalf("no tree locks in the store: %v", err)
	}
	for _, l := range locks {
		f, err := os.OpenFile(l, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			t.Fatalf("lock %s: %v", l, err)
		}
	}
	for _, verb := range []string{"prepare", "run"} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := e.Cmd(ctx, e.podArgs(verb, nil)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		// The pod directory exists while rkt waits for the tree lock.
		deadline := time.Now().Add(20 * time.Second)
		for {
			if ents, _ := os.ReadDir(e.podsPhaseDir("prepare")); len(ents) > 0 {
				break
			}
			if time.Now().After(deadline) {
				cancel()
				cmd.Wait()
				t.Fatalf("rkt %s made no pod directory while waiting: %s", verb, stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		cancel()
		if code := cmd.ProcessState.ExitCode(); code != 254 || strings.Contains(stderr.String(), "panic") || !strings.Contains(stderr.String(), "locked by an image removal") {
			t.Errorf("rkt %s interrupted while waiting for a tree lock: exit %d\nstderr: %s", verb, code, stderr.String())
		}
		e.requireNoPods()
	}
}
