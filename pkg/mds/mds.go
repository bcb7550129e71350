// Package mds is the appc metadata service (docs/metadata-service.md):
// the HTTP API a pod's apps reach through AC_METADATA_URL (pod and app
// manifests, annotations, UUID, image IDs, and the HMAC identity
// endpoints), the registration protocol rkt speaks over a root-only unix
// socket, and the client side of that protocol stage0 and gc use.
//
// The service keeps nothing a restart loses: a pod is registered with
// the path of its directory, from which everything is read (the token
// included, in the pod's root-only mds-token file), and a service that
// starts again registers the running pods of its data directories anew.
package mds

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/pkg/appcjson"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// DefaultPort is the TCP port pods reach the service on (CoreOS rkt's).
const DefaultPort = 18112

// DefaultSocket is the registration socket.
const DefaultSocket = "/run/rkt/metadata-svc.sock"

// DefaultListen are the addresses the service listens on for pods:
// loopback for --net=host pods, and the host side (gateway) of the
// built-in networks default and default-restricted.
var DefaultListen = []string{"127.0.0.1", "172.16.28.1", "172.31.0.1"}

// ErrUnknownPod is returned for a token or UUID no registered pod has.
var ErrUnknownPod = errors.New("no such pod registered")

// pod is one registered pod, as read from its directory.
type pod struct {
	uuid  string
	token string
	// dir is the pod's directory once it runs (<data>/pods/run/<uuid>):
	// rkt registers it just before it moves there.
	dir      string
	raw      []byte // the pod manifest as stage0 wrote it
	manifest *schema.PodManifest
	images   map[string][]byte // app name -> raw image manifest
	imgMans  map[string]*schema.ImageManifest

	mu sync.Mutex
	// addrs are the pod's addresses (from net-info.json), loaded at its
	// first request; hostNet says it has none (--net=host).
	addrs   []net.IP
	hostNet bool
	loaded  bool
}

// Registry is the set of registered pods, by token and by UUID.
type Registry struct {
	mu      sync.RWMutex
	byToken map[string]*pod
	byUUID  map[string]*pod
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byToken: map[string]*pod{}, byUUID: map[string]*pod{}}
}

// ReadTokenFile reads a pod's mds-token file: the token, and the port
// the service answered registration with (0 if not written yet).
func ReadTokenFile(podDir string) (token string, port int, err error) {
	data, err := os.ReadFile(filepath.Join(podDir, stage1abi.MDSTokenFile))
	if err != nil {
		return "", 0, err
	}
	lines := strings.Fields(string(data))
	if len(lines) == 0 || !validToken(lines[0]) {
		return "", 0, fmt.Errorf("%s: malformed metadata service token", filepath.Join(podDir, stage1abi.MDSTokenFile))
	}
	if len(lines) > 1 {
		port, _ = strconv.Atoi(lines[1])
	}
	return lines[0], port, nil
}

func validToken(t string) bool {
	if len(t) < 32 || len(t) > 128 {
		return false
	}
	for _, c := range t {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// loadPod reads a pod from its directory: manifest, image manifests of
// its apps, token.
func loadPod(dir string) (*pod, error) {
	token, _, err := ReadTokenFile(dir)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, stage1abi.PodManifestFile))
	if err != nil {
		return nil, fmt.Errorf("read the pod manifest: %w", err)
	}
	pm := &schema.PodManifest{}
	if err := appcjson.Unmarshal(raw, pm); err != nil {
		return nil, fmt.Errorf("pod manifest %s: %w", dir, err)
	}
	uuid := filepath.Base(dir)
	if _, err := types.NewUUID(uuid); err != nil {
		return nil, fmt.Errorf("pod directory %s is not named by a pod UUID", dir)
	}
	runDir := filepath.Join(filepath.Dir(filepath.Dir(dir)), "run", uuid)
	p := &pod{uuid: uuid, token: token, dir: runDir, raw: raw, manifest: pm,
		images: map[string][]byte{}, imgMans: map[string]*schema.ImageManifest{}}
	for _, ra := range pm.Apps {
		name := ra.Name.String()
		data, err := os.ReadFile(filepath.Join(dir, stage1abi.AppManifest(name)))
		if err != nil {
			return nil, fmt.Errorf("app %s: read its image manifest: %w", name, err)
		}
		im := &schema.ImageManifest{}
		if err := appcjson.Unmarshal(data, im); err != nil {
			return nil, fmt.Errorf("app %s: image manifest: %w", name, err)
		}
		p.images[name], p.imgMans[name] = data, im
	}
	return p, nil
}

// Register reads the pod in dir (an absolute pod directory) and
// registers it under the token of its mds-token file, replacing an
// earlier registration of the same pod.
func (r *Registry) Register(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("pod directory %q is not absolute", dir)
	}
	p, err := loadPod(filepath.Clean(dir))
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.byUUID[p.uuid]; old != nil {
		delete(r.byToken, old.token)
	}
	if other := r.byToken[p.token]; other != nil && other.uuid != p.uuid {
		return fmt.Errorf("pod %s: its token is another pod's", p.uuid)
	}
	r.byToken[p.token], r.byUUID[p.uuid] = p, p
	return nil
}

// Unregister forgets the pod with this UUID; an unknown one is not an
// error.
func (r *Registry) Unregister(uuid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.byUUID[uuid]; p != nil {
		delete(r.byToken, p.token)
		delete(r.byUUID, uuid)
	}
}

// Len is the number of registered pods.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byUUID)
}

func (r *Registry) byTok(token string) *pod {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byToken[token]
}

// Rebuild registers every running pod of the data directory that has a
// token (the pods registered before the service restarted). It returns
// how many it registered; a pod that cannot be read is skipped.
func (r *Registry) Rebuild(dataDir string) (int, []error) {
	runDir := filepath.Join(dataDir, "pods", "run")
	ents, err := os.ReadDir(runDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, []error{err}
	}
	n := 0
	var errs []error
	for _, e := range ents {
		dir := filepath.Join(runDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, stage1abi.MDSTokenFile)); err != nil {
			continue
		}
		if err := r.Register(dir); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", e.Name(), err))
			continue
		}
		n++
	}
	return n, errs
}

// allowedFrom reports whether a request from ip may be the pod's: a pod
// with networks sends from one of its addresses, a --net=host pod from
// the host's loopback.
func (p *pod) allowedFrom(ip net.IP) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.loaded {
		nis, err := networking.LoadNetInfo(p.dir)
		if err != nil {
			return false
		}
		for _, ni := range nis {
			for _, c := range ni.IPs {
				if a, _, err := net.ParseCIDR(c); err == nil {
					p.addrs = append(p.addrs, a)
				}
			}
			if a := net.ParseIP(ni.IP); a != nil {
				p.addrs = append(p.addrs, a)
			}
		}
		_, statErr := os.Stat(filepath.Join(p.dir, "net-info.json"))
		p.hostNet = len(nis) == 0 && errors.Is(statErr, os.ErrNotExist)
		// A pod whose networks are being set up has no addresses yet:
		// try again at the next request.
		p.loaded = p.hostNet || len(p.addrs) > 0
	}
	if p.hostNet {
		return ip.IsLoopback()
	}
	for _, a := range p.addrs {
		if a.Equal(ip) {
			return true
		}
	}
	return false
}

// appAnnotations are the image's annotations with the pod manifest's
// app annotations over them.
func (p *pod) appAnnotations(name string) (types.Annotations, bool) {
	ra := p.manifest.Apps.Get(types.ACName(name))
	im := p.imgMans[name]
	if ra == nil || im == nil {
		return nil, false
	}
	out := append(types.Annotations(nil), im.Annotations...)
	for _, a := range ra.Annotations {
		out.Set(a.Name, a.Value)
	}
	return out, true
}

// readLine reads one line (without its newline) of at most max bytes.
func readLine(br *bufio.Reader, max int) (string, error) {
	var b bytes.Buffer
	for {
		c, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			return b.String(), nil
		}
		if b.Len() >= max {
			return "", errors.New("line too long")
		}
		b.WriteByte(c)
	}
}
