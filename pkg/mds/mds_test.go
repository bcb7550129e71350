package mds

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/pkg/stage1abi"
	"github.com/rkt/rkt/pkg/testutil"
)

const (
	uuidA = "6b6f0d0e-0a7e-4c57-9a3e-5d2b8c3b1a01"
	uuidB = "6b6f0d0e-0a7e-4c57-9a3e-5d2b8c3b1a02"
	idA   = "sha512-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	idB   = "sha512-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// fakePod writes a pod directory <data>/pods/run/<uuid> with one app,
// a token and (unless ip is "") a net-info.json giving the pod ip.
func fakePod(t *testing.T, data, uuid, app, id, ip string) (dir, token string) {
	t.Helper()
	dir = filepath.Join(data, "pods", "run", uuid)
	if err := os.MkdirAll(filepath.Join(dir, stage1abi.AppInfoDir(app)), 0o755); err != nil {
		t.Fatal(err)
	}
	pm := `{"acKind":"PodManifest","acVersion":"0.8.11","apps":[{"name":"` + app + `","image":{"name":"example.com/` + app + `","id":"` + id + `"},` +
		`"annotations":[{"name":"over","value":"pod"},{"name":"podonly","value":"p"}]}],` +
		`"volumes":null,"isolators":null,"annotations":[{"name":"pod-anno","value":"` + uuid + `"}],"ports":null}`
	im := `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"example.com/` + app + `",` +
		`"annotations":[{"name":"over","value":"image"},{"name":"imgonly","value":"i"}]}`
	write := func(rel, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(stage1abi.PodManifestFile, pm, 0o644)
	write(stage1abi.AppManifest(app), im, 0o644)
	token, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	write(stage1abi.MDSTokenFile, token+"\n18112\n", 0o600)
	if ip != "" {
		write("net-info.json", `[{"netName":"default","ifName":"eth0","ip":"`+ip+`","ips":["`+ip+`/24"],"netns":"x","config":{}}]`, 0o644)
	}
	return dir, token
}

type env struct {
	api        *API
	data       string
	tokA, tokB string
	dirA, dirB string
	ipA, ipB   string
}

func newEnv(t *testing.T) *env {
	e := &env{data: t.TempDir(), ipA: "172.16.28.5", ipB: "172.16.28.6"}
	e.dirA, e.tokA = fakePod(t, e.data, uuidA, "web", idA, e.ipA)
	e.dirB, e.tokB = fakePod(t, e.data, uuidB, "db", idB, e.ipB)
	reg := NewRegistry()
	for _, d := range []string{e.dirA, e.dirB} {
		if err := reg.Register(d); err != nil {
			t.Fatal(err)
		}
	}
	e.api = &API{Reg: reg, Key: []byte("0123456789abcdef0123456789abcdef")}
	return e
}

// do sends a request from ip to the API and returns status, type, body.
func (e *env) do(t *testing.T, ip, method, path string, form url.Values, flavor bool) (int, string, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, "http://172.16.28.1:18112"+path, body)
	r.RemoteAddr = net.JoinHostPort(ip, "40000")
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if flavor {
		r.Header.Set("Metadata-Flavor", "AppContainer")
	}
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, r)
	return w.Code, w.Header().Get("Content-Type"), w.Body.String()
}

func (e *env) get(t *testing.T, tok, path string) (string, string) {
	t.Helper()
	code, ct, body := e.do(t, e.ipA, "GET", "/"+tok+"/acMetadata/v1"+path, nil, true)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return ct, body
}

func TestEndpoints(t *testing.T) {
	e := newEnv(t)
	ct, body := e.get(t, e.tokA, "/pod/uuid")
	if ct != contentText || body != uuidA {
		t.Errorf("uuid: %q %q", ct, body)
	}
	ct, body = e.get(t, e.tokA, "/pod/manifest")
	raw, _ := os.ReadFile(filepath.Join(e.dirA, stage1abi.PodManifestFile))
	if ct != contentJSON || body != string(raw) {
		t.Errorf("manifest: %q %q", ct, body)
	}
	ct, body = e.get(t, e.tokA, "/pod/annotations/")
	var an types.Annotations
	if err := json.Unmarshal([]byte(body), &an); ct != contentJSON || err != nil || len(an) != 1 || an[0].Value != uuidA {
		t.Errorf("pod annotations: %q %q %v", ct, body, err)
	}
	ct, body = e.get(t, e.tokA, "/apps/web/annotations/")
	an = nil
	if err := json.Unmarshal([]byte(body), &an); ct != contentJSON || err != nil {
		t.Fatalf("app annotations: %q %q %v", ct, body, err)
	}
	want := map[string]string{"over": "pod", "imgonly": "i", "podonly": "p"}
	got := map[string]string{}
	for _, a := range an {
		got[a.Name.String()] = a.Value
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("app annotations %v, want %v", got, want)
	}
	ct, body = e.get(t, e.tokA, "/apps/web/image/manifest")
	var im schema.ImageManifest
	if err := json.Unmarshal([]byte(body), &im); ct != contentJSON || err != nil || im.Name != "example.com/web" {
		t.Errorf("image manifest: %q %q %v", ct, body, err)
	}
	ct, body = e.get(t, e.tokA, "/apps/web/image/id")
	if ct != contentText || body != idA {
		t.Errorf("image id: %q %q", ct, body)
	}
}

func TestHMACRoundTrip(t *testing.T) {
	e := newEnv(t)
	sign := func(tok, ip, content string) string {
		code, ct, body := e.do(t, ip, "POST", "/"+tok+"/acMetadata/v1/pod/hmac/sign", url.Values{"content": {content}}, true)
		if code != 200 || ct != contentText {
			t.Fatalf("sign: %d %q %q", code, ct, body)
		}
		return body
	}
	verify := func(content, uuid, sig string) int {
		code, ct, body := e.do(t, e.ipB, "POST", "/"+e.tokB+"/acMetadata/v1/pod/hmac/verify",
			url.Values{"content": {content}, "uuid": {uuid}, "signature": {sig}}, true)
		if code == 200 && ct != contentText {
			t.Errorf("verify: content type %q (%s)", ct, body)
		}
		return code
	}
	sig := sign(e.tokA, e.ipA, "Old MacDonald Had A Farm")
	// Another pod verifies what pod A signed.
	if c := verify("Old MacDonald Had A Farm", uuidA, sig); c != 200 {
		t.Errorf("verify A's signature: %d", c)
	}
	if c := verify("Old MacDonald Had A Farn", uuidA, sig); c != 403 {
		t.Errorf("verify other content: %d, want 403", c)
	}
	// The UUID is part of what is signed: B cannot pass A's signature
	// off as its own.
	if c := verify("Old MacDonald Had A Farm", uuidB, sig); c != 403 {
		t.Errorf("verify with another pod's uuid: %d, want 403", c)
	}
	if c := verify("x", uuidA, "!!notbase64"); c != 400 {
		t.Errorf("verify a malformed signature: %d, want 400", c)
	}
	if sigB := sign(e.tokB, e.ipB, "Old MacDonald Had A Farm"); sigB == sig {
		t.Error("two pods' signatures of one content are equal")
	}
	// Another key (another host) does not verify it.
	e.api.Key = []byte("another key another key another key")
	if c := verify("Old MacDonald Had A Farm", uuidA, sig); c != 403 {
		t.Errorf("verify under another key: %d, want 403", c)
	}
}

func TestOtherPodsData(t *testing.T) {
	e := newEnv(t)
	// Pod A, from its own address, with B's token (stolen): refused.
	if code, _, _ := e.do(t, e.ipA, "GET", "/"+e.tokB+"/acMetadata/v1/pod/manifest", nil, true); code != 403 {
		t.Errorf("pod A with B's token: %d, want 403", code)
	}
	// Pod A names B's app under its own token: not its app.
	if code, _, _ := e.do(t, e.ipA, "GET", "/"+e.tokA+"/acMetadata/v1/apps/db/image/manifest", nil, true); code != 404 {
		t.Errorf("pod A asking for B's app: %d, want 404", code)
	}
	// From the host (or anything not pod A's address) with A's token.
	for _, ip := range []string{"127.0.0.1", "172.16.28.1", "10.0.0.9"} {
		if code, _, _ := e.do(t, ip, "GET", "/"+e.tokA+"/acMetadata/v1/pod/uuid", nil, true); code != 403 {
			t.Errorf("A's token from %s: %d, want 403", ip, code)
		}
	}
}

func TestBadToken(t *testing.T) {
	e := newEnv(t)
	for _, tok := range []string{"", "x", strings.Repeat("0", 32), e.tokA + "0", strings.ToUpper(e.tokA)} {
		if code, _, _ := e.do(t, e.ipA, "GET", "/"+tok+"/acMetadata/v1/pod/uuid", nil, true); code != 403 && code != 404 {
			t.Errorf("token %q: %d, want 403", tok, code)
		}
	}
	if code, _, _ := e.do(t, e.ipA, "GET", "/"+e.tokA+"/acMetadata/v1/pod/uuid", nil, false); code != 400 {
		t.Errorf("without Metadata-Flavor: %d, want 400", code)
	}
	if code, _, _ := e.do(t, e.ipA, "GET", "/"+e.tokA+"/acMetadata/v1/pod/nothing", nil, true); code != 404 {
		t.Errorf("unknown path: %d, want 404", code)
	}
	e.api.Reg.Unregister(uuidA)
	if code, _, _ := e.do(t, e.ipA, "GET", "/"+e.tokA+"/acMetadata/v1/pod/uuid", nil, true); code != 403 {
		t.Errorf("unregistered pod: %d, want 403", code)
	}
}

func TestHostNetPod(t *testing.T) {
	data := t.TempDir()
	dir, tok := fakePod(t, data, uuidA, "web", idA, "")
	reg := NewRegistry()
	if err := reg.Register(dir); err != nil {
		t.Fatal(err)
	}
	e := &env{api: &API{Reg: reg, Key: []byte("0123456789abcdef0123456789abcdef")}}
	if code, _, body := e.do(t, "127.0.0.1", "GET", "/"+tok+"/acMetadata/v1/pod/uuid", nil, true); code != 200 || body != uuidA {
		t.Errorf("--net=host pod from loopback: %d %q", code, body)
	}
	if code, _, _ := e.do(t, "172.16.28.7", "GET", "/"+tok+"/acMetadata/v1/pod/uuid", nil, true); code != 403 {
		t.Errorf("--net=host pod's token from a pod address: %d, want 403", code)
	}
}

func TestRebuild(t *testing.T) {
	e := newEnv(t)
	// An unregistered pod (no token) is not picked up.
	plain := filepath.Join(e.data, "pods", "run", "6b6f0d0e-0a7e-4c57-9a3e-5d2b8c3b1a03")
	if err := os.MkdirAll(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	n, errs := reg.Rebuild(e.data)
	if n != 2 || len(errs) != 0 {
		t.Fatalf("rebuild: %d pods, %v", n, errs)
	}
	e.api.Reg = reg
	if _, body := e.get(t, e.tokA, "/pod/uuid"); body != uuidA {
		t.Errorf("after rebuild: %q", body)
	}
}

func TestLoadKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d", "key")
	k1, err := LoadKey(p)
	if err != nil || len(k1) != KeySize {
		t.Fatalf("LoadKey: %d bytes, %v", len(k1), err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v", fi.Mode(), err)
	}
	k2, err := LoadKey(p)
	if err != nil || string(k1) != string(k2) {
		t.Errorf("the key changed across loads: %v", err)
	}
}

// serveSocket starts a registration server on a fresh socket.
func serveSocket(t *testing.T, reg *Registry) string {
	sock := filepath.Join(t.TempDir(), "mds.sock")
	l, err := listenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, %v; want 0600", fi.Mode(), err)
	}
	done := make(chan struct{})
	go func() { reg.ServeRegistration(l, 18200, t.Logf); close(done) }()
	t.Cleanup(func() { l.Close(); <-done })
	return sock
}

func TestRegisterNotRunning(t *testing.T) {
	data := t.TempDir()
	dir, _ := fakePod(t, data, uuidA, "web", idA, "")
	os.Remove(filepath.Join(dir, stage1abi.MDSTokenFile))
	_, err := RegisterPod(context.Background(), filepath.Join(data, "none.sock"), dir)
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("no service: %v, want ErrNotRunning", err)
	}
	if _, err := os.Stat(filepath.Join(dir, stage1abi.MDSTokenFile)); err == nil {
		t.Error("a failed registration left the token file")
	}
}

// TestRegisterRoot registers a pod as root, and is refused as nobody.
func TestRegisterRoot(t *testing.T) {
	if sock := os.Getenv("MDS_TEST_CLIENT"); sock != "" {
		// The non-root client of the test below.
		_, err := request(context.Background(), sock, "unregister "+uuidA)
		t.Log(err)
		return
	}
	testutil.RequireRoot(t)
	data := t.TempDir()
	dir, _ := fakePod(t, data, uuidA, "web", idA, "")
	os.Remove(filepath.Join(dir, stage1abi.MDSTokenFile))
	reg := NewRegistry()
	sock := serveSocket(t, reg)
	tok, err := RegisterPod(context.Background(), sock, dir)
	if err != nil {
		t.Fatal(err)
	}
	gotTok, port, err := ReadTokenFile(dir)
	if err != nil || gotTok != tok || port != 18200 {
		t.Errorf("token file: %q %d %v", gotTok, port, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, stage1abi.MDSTokenFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode: %v %v", fi.Mode(), err)
	}
	if reg.Len() != 1 || reg.byTok(tok) == nil {
		t.Fatalf("registry after registration: %d pods", reg.Len())
	}
	// A non-root process is refused, whatever socket mode lets it in:
	// this test binary, copied where nobody can run it, as nobody.
	pub, err := os.MkdirTemp("", "mds-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pub)
	os.Chmod(pub, 0o755)
	self, _ := os.Executable()
	bin := filepath.Join(pub, "mds.test")
	if data, err := os.ReadFile(self); err != nil || os.WriteFile(bin, data, 0o755) != nil {
		t.Fatalf("copy the test binary: %v", err)
	}
	pubSock := filepath.Join(pub, "mds.sock")
	if err := os.Link(sock, pubSock); err != nil {
		// Another file system: serve a second socket there.
		t.Fatalf("link the socket: %v", err)
	}
	os.Chmod(pubSock, 0o777)
	cmd := exec.Command(bin, "-test.v", "-test.run=^TestRegisterRoot$")
	cmd.Env = append(os.Environ(), "MDS_TEST_CLIENT="+pubSock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if !strings.Contains(string(out), "only root may register pods") {
		t.Errorf("a non-root client got %q (%v), want a refusal", out, err)
	}
	if reg.Len() != 1 {
		t.Error("a non-root client unregistered a pod")
	}
	if err := UnregisterPod(context.Background(), sock, uuidA); err != nil || reg.Len() != 0 {
		t.Errorf("unregister as root: %v, %d pods left", err, reg.Len())
	}
}

var _ http.Handler = (*API)(nil)
