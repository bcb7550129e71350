package tests

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rkt/rkt/pkg/mds"
	"github.com/rkt/rkt/tests/testutils"
)

// The App Container conformance suite: appc's ACE validator (the ace
// package of the github.com/appc/spec module go.mod pins), packed into
// its two images with the module's actool as the module's
// scripts/build-ace-validator-acis does, run against a metadata service
// the test starts.

// mdsService is a `rkt metadata-service` a test started, with its
// registration socket in the test's directory (RKT_MDS_SOCKET, so no
// other rkt on the host registers with it) and a free port.
type mdsService struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	port int
	mu   sync.Mutex
	log  bytes.Buffer
}

func (s *mdsService) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.Write(p)
}

func (s *mdsService) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// stop stops the service (SIGTERM, SIGKILL after 5s) and waits for it.
func (s *mdsService) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// freePort returns a TCP port nothing listens on at the moment.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startMDS starts the metadata service for the context's data directory
// and stops it (by its pid) when the test ends.
func startMDS(t *testing.T, e *realEnv) *mdsService { return startMDSWith(t, e, false) }

// startMDSWith starts the service as startMDS, socket-activated (by
// systemd-socket-activate, as by rkt-metadata.socket: the registration
// socket is passed in LISTEN_FDS) if activated is set.
func startMDSWith(t *testing.T, e *realEnv, activated bool) *mdsService {
	t.Helper()
	sock := filepath.Join(e.dir, "mds.sock")
	t.Setenv(mds.SocketEnv, sock)
	s := &mdsService{port: freePort(t)}
	args := append(e.GlobalArgs(), "metadata-service", "--listen-port="+strconv.Itoa(s.port), "--key-file="+filepath.Join(e.dir, "hmac-key"))
	if activated {
		sa, err := exec.LookPath("systemd-socket-activate")
		if err != nil {
			t.Skipf("no systemd-socket-activate: %v", err)
		}
		// --socket names a path that is never made: the passed socket
		// is used.
		s.cmd = exec.Command(sa, append([]string{"-l", sock, e.Bin}, append(args, "--socket="+filepath.Join(e.dir, "unused.sock"))...)...)
	} else {
		s.cmd = exec.Command(e.Bin, append(args, "--socket="+sock)...)
	}
	s.cmd.Stdout, s.cmd.Stderr = s, s
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { s.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		s.stop()
		if _, err := os.Stat(sock); err == nil && !activated {
			t.Errorf("the metadata service left its socket %s", sock)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-done:
			t.Fatalf("rkt metadata-service exited: %s", s.output())
		default:
		}
		if activated && strings.Contains(s.output(), "metadata service: registration on") {
			return s
		}
		if c, err := net.Dial("unix", sock); err == nil && !activated {
			c.Close()
			return s
		}
	}
	t.Fatalf("rkt metadata-service did not listen on %s: %s", sock, s.output())
	return nil
}

// aceImages builds actool and the ACE validator from the pinned module
// and packs the main and sidekick images; prestart, if set, leaves the
// event handlers out of the main image and puts an empty /prestart in
// it instead (what its pre-start handler would have made), so that the
// main and sidekick checks run without the handlers.
func aceImages(t *testing.T, dir string, prestart bool) (main, sidekick string) {
	t.Helper()
	actool, err := testutils.BuildPackage(dir, "actool", "github.com/appc/spec/actool")
	if err != nil {
		t.Fatal(err)
	}
	validator, err := testutils.BuildPackage(dir, "ace-validator", "github.com/appc/spec/ace")
	if err != nil {
		t.Fatal(err)
	}
	// The module's ace/ directory holds the manifests.
	modDir, err := testutils.ModuleDir("github.com/appc/spec")
	if err != nil {
		t.Fatal(err)
	}
	arch := runtime.GOARCH
	if arch == "arm64" {
		arch = "aarch64"
	}
	build := func(typ string, extra ...string) string {
		layout := filepath.Join(dir, "layout-"+typ)
		if err := os.MkdirAll(filepath.Join(layout, "rootfs", "opt", "acvalidator"), 0o755); err != nil {
			t.Fatal(err)
		}
		in, err := os.ReadFile(filepath.Join(modDir, "ace", "image_manifest_"+typ+".json.in"))
		if err != nil {
			t.Fatal(err)
		}
		m := []byte(strings.NewReplacer("@ACI_OS@", "linux", "@ACI_ARCH@", arch).Replace(string(in)))
		if len(extra) > 0 {
			// Without the event handlers: the files are there already.
			var im map[string]any
			if err := json.Unmarshal(m, &im); err != nil {
				t.Fatal(err)
			}
			delete(im["app"].(map[string]any), "eventHandlers")
			if m, err = json.Marshal(im); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(layout, "manifest"), m, 0o644); err != nil {
			t.Fatal(err)
		}
		bin, err := os.ReadFile(validator)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(layout, "rootfs", "ace-validator"), bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range extra {
			if err := os.WriteFile(filepath.Join(layout, "rootfs", f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		aci := filepath.Join(dir, "ace-validator-"+typ+".aci")
		if out, err := exec.Command(actool, "build", "--overwrite", layout, aci).CombinedOutput(); err != nil {
			t.Fatalf("actool build %s: %v\n%s", typ, err, out)
		}
		return aci
	}
	if prestart {
		return build("main", "prestart"), build("sidekick")
	}
	return build("main"), build("sidekick")
}

// TestACEValidator is appc's conformance suite as CoreOS rkt ran it:
// both validator apps in one pod with the database volume, registered
// with the metadata service. The prestart and poststop checks are the
// image's pre-start and post-stop event handlers.
func TestACEValidator(t *testing.T) {
	e := newRealEnv(t)
	startMDS(t, e)
	main, sidekick := aceImages(t, e.dir, false)
	args := []string{insecureImage, "run", "--mds-register", "--volume", "database,kind=empty", main, sidekick}
	r := e.Run(args...)
	for _, want := range []string{"prestart OK", "main OK", "sidekick OK", "poststop OK"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("no %q in the validator's output", want)
		}
	}
	if r.Exit != 0 || t.Failed() {
		t.Fatalf("%s", describeResult(args, r))
	}
}

// TestACEValidatorApps runs the validator's main and sidekick checks (all
// but the event handlers': the main image has none, and /prestart
// already, as its pre-start handler would have made it) on the networks a pod reaches
// the metadata service through: the default network's gateway, the
// default-restricted one's, and the host's loopback. gc unregisters the
// pods.
func TestACEValidatorApps(t *testing.T) {
	e := newRealEnv(t)
	svc := startMDS(t, e)
	main, sidekick := aceImages(t, e.dir, true)
	for _, net := range []string{"default", "default-restricted", "host"} {
		t.Run(net, func(t *testing.T) {
			uuidFile := filepath.Join(t.TempDir(), "uuid")
			args := []string{insecureImage, "run", "--net=" + net, "--mds-register", "--uuid-file-save=" + uuidFile,
				"--volume", "database,kind=empty", main, sidekick}
			r := e.Run(args...)
			if r.Exit != 0 || !strings.Contains(r.Stdout, "main OK") || !strings.Contains(r.Stdout, "sidekick OK") {
				t.Fatalf("%s", describeResult(args, r))
			}
			data, err := os.ReadFile(uuidFile)
			if err != nil {
				t.Fatal(err)
			}
			uuid := mustUUID(t, string(data))
			if !strings.Contains(svc.output(), "registered pod "+filepath.Join(e.Dir, "pods", "prepare", uuid)) {
				t.Errorf("the service did not log the pod's registration:\n%s", svc.output())
			}
			if r := e.Run("gc", "--grace-period=0s"); r.Exit != 0 {
				t.Fatalf("%s", describeResult([]string{"gc"}, r))
			}
			if !strings.Contains(svc.output(), "unregistered pod "+uuid) {
				t.Errorf("gc did not unregister pod %s:\n%s", uuid, svc.output())
			}
		})
	}
}

// TestMDSRegisterWithoutService: --mds-register fails, naming the
// service, and leaves no pod; without the flag, a pod runs unregistered
// and its apps get no AC_METADATA_URL.
func TestMDSRegisterWithoutService(t *testing.T) {
	e := newRealEnv(t)
	t.Setenv(mds.SocketEnv, filepath.Join(e.dir, "none.sock"))
	r := e.MustFail(254, "the metadata service is not running", insecureImage, "run", hostNet, "--mds-register", e.img)
	if !strings.Contains(r.Stderr, "rkt metadata-service") {
		t.Errorf("the error does not say how to start the service: %s", r.Stderr)
	}
	e.requireNoPods()
	out := e.runOK(e.img, "--exec=/inspect", "--", "--print-env=AC_METADATA_URL")
	if !strings.Contains(out, "AC_METADATA_URL is unset") {
		t.Errorf("an unregistered pod's app: %q, want AC_METADATA_URL unset", out)
	}
	// A socket nobody listens on (a service that died): a warning by
	// default, the same failure with --mds-register.
	stale := filepath.Join(e.dir, "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	t.Setenv(mds.SocketEnv, stale)
	r = e.run(e.img, "--exec=/inspect", "--", "--print-env=AC_METADATA_URL")
	if r.Exit != 0 || !strings.Contains(r.Stderr, "not registered with the metadata service") || !strings.Contains(r.Stdout, "AC_METADATA_URL is unset") {
		t.Errorf("a stale socket without --mds-register: %s", describeResult(nil, r))
	}
	e.MustFail(254, "the metadata service is not running", insecureImage, "run", hostNet, "--mds-register", e.img)
}

// TestMDSSocketActivation: the service takes its registration socket
// from systemd (LISTEN_FDS), as rkt-metadata.socket starts it.
func TestMDSSocketActivation(t *testing.T) {
	e := newRealEnv(t)
	svc := startMDSWith(t, e, true)
	if !strings.Contains(svc.output(), "registration on "+filepath.Join(e.dir, "mds.sock")) {
		t.Errorf("the service did not take the passed socket:\n%s", svc.output())
	}
	if _, err := os.Stat(filepath.Join(e.dir, "unused.sock")); err == nil {
		t.Error("the socket-activated service made its own socket too")
	}
	main, sidekick := aceImages(t, e.dir, true)
	args := []string{insecureImage, "run", hostNet, "--mds-register", "--volume", "database,kind=empty", main, sidekick}
	if r := e.Run(args...); r.Exit != 0 || !strings.Contains(r.Stdout, "main OK") {
		t.Fatalf("%s", describeResult(args, r))
	}
}

// TestMDSRestart: a service started again registers the running pods
// again from their directories, and they keep their token and URL.
func TestMDSRestart(t *testing.T) {
	e := newRealEnv(t)
	svc := startMDS(t, e)
	sig := t.TempDir()
	script := `touch /sig/ready; while [ ! -e /sig/go ]; do sleep 0.05; done; ` +
		`wget -q -O- --header "Metadata-Flavor: AppContainer" "$AC_METADATA_URL/acMetadata/v1/pod/uuid"; echo; echo asked`
	bp := e.start(nil, append([]string{"--net=default", "--mds-register", "--volume=sig,kind=host,source=" + sig,
		e.img, "--mount=volume=sig,target=/sig"}, shExec(script)...)...)
	e.waitFor(bp, "the app's ready file", func() bool {
		_, err := os.Stat(filepath.Join(sig, "ready"))
		return err == nil
	})
	svc.stop()
	svc2 := &mdsService{port: svc.port}
	svc2.cmd = exec.Command(e.Bin, append(e.GlobalArgs(), "metadata-service", "--socket="+os.Getenv(mds.SocketEnv),
		"--listen-port="+strconv.Itoa(svc.port), "--key-file="+filepath.Join(e.dir, "hmac-key"))...)
	svc2.cmd.Stdout, svc2.cmd.Stderr = svc2, svc2
	done := make(chan struct{})
	svc2.done = done
	if err := svc2.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { svc2.cmd.Wait(); close(done) }()
	t.Cleanup(svc2.stop)
	e.waitFor(bp, "the service's start", func() bool {
		return strings.Contains(svc2.output(), "metadata service: registration on")
	})
	if !strings.Contains(svc2.output(), "registered 1 running pods of "+e.Dir) {
		t.Errorf("the restarted service did not register the running pod again:\n%s", svc2.output())
	}
	if err := os.WriteFile(filepath.Join(sig, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bp.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pod did not exit")
	}
	if out := bp.out.String(); !strings.Contains(out, bp.UUID+"\nasked") {
		t.Errorf("the pod asked the restarted service for its UUID and got %q, want %s (stderr %s)", out, bp.UUID, bp.errb.String())
	}
}
