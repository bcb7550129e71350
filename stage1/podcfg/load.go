package podcfg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/rkt/rkt/networking"
	"github.com/rkt/rkt/pkg/appcjson"
	"github.com/rkt/rkt/pkg/cgroup"
	"github.com/rkt/rkt/pkg/stage1abi"
	"github.com/rkt/rkt/stage2"
)

// NotifyAnnotation in an app's image manifest says the app reports its
// readiness itself with sd_notify(READY=1).
const NotifyAnnotation = "appc.io/executor/supports-systemd-notify"

// DefaultGracePeriod is how long apps get between SIGTERM and SIGKILL
// when the pod stops (rkt stop, SIGTERM to rkt, or an app failing). The
// pod annotation GraceAnnotation overrides it.
const DefaultGracePeriod = 10 * time.Second

// GraceAnnotation is the pod manifest annotation that sets the grace
// period (a Go duration such as "30s").
const GraceAnnotation = stage1abi.StopTimeoutAnno

// SocketActivatedAnnotation is the app annotation that gives the app the
// sockets of socket activation, or keeps them from it (stage1abi).
const SocketActivatedAnnotation = stage1abi.SocketActivatedAnno

// DefaultHandlerTimeout is how long an app's pre-start or post-stop
// event handler may run before it is killed. The pod annotation
// HandlerTimeoutAnnotation overrides it.
const DefaultHandlerTimeout = 60 * time.Second

// HandlerTimeoutAnnotation is the pod manifest annotation that sets the
// event handlers' timeout (a Go duration such as "5m").
const HandlerTimeoutAnnotation = stage1abi.HandlerTimeoutAnnotation

// DefaultPath is the PATH of apps whose environment has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// LookIn finds an app's executable exe (absolute, relative to the app's
// root, or a name looked up in env's PATH, else DefaultPath) inside root,
// the app's root as seen from here, and returns its path in the app's
// root. Symlinks are resolved inside root; a name found in PATH must be
// an executable regular file.
func LookIn(root, exe string, env []string) (string, error) {
	if strings.Contains(exe, "/") {
		return path.Clean("/" + exe), nil
	}
	p := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			p = v
		}
	}
	for _, dir := range strings.Split(p, ":") {
		cand := path.Join("/", dir, exe)
		full, err := securejoin.SecureJoin(root, cand)
		if err != nil {
			continue
		}
		if fi, err := os.Stat(full); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return cand, nil
		}
	}
	return "", fmt.Errorf("exec %s: not found in the app's PATH (%s)", exe, p)
}

// Pod is a pod ready to run.
type Pod struct {
	UUID     string
	Dir      string // absolute
	Hostname string
	// GracePeriod is DefaultGracePeriod or the pod's GraceAnnotation.
	GracePeriod time.Duration
	// HandlerTimeout is DefaultHandlerTimeout or the pod's
	// HandlerTimeoutAnnotation.
	HandlerTimeout time.Duration
	Apps           []*App
	// EmptyVolumes are prepared by stage1 before any app starts.
	EmptyVolumes []EmptyVolume
	// Ports are the host ports forwarded to the pod (the pod manifest's
	// ports), for contained networks only.
	Ports []networking.PortForward
}

// App is one app: what its launcher gets, and what stage1 does around it.
type App struct {
	Launch stage2.App
	Limits cgroup.Limits
	// SupportsNotify: the app sends READY=1 itself.
	SupportsNotify bool
	// SocketActivated is the app's SocketActivatedAnnotation: "true",
	// "false" or "" (none).
	SocketActivated string
	// InlineVolumes are empty volumes defined in the app's own mounts
	// (appVolume); stage1 prepares them like the pod's.
	InlineVolumes []EmptyVolume
	// OOMEvents are the memory cgroup event files of the app's cgroups
	// (set with the cgroups), for the supervisor's out-of-memory report.
	OOMEvents []string
	// PreStart and PostStop are the commands of the app's pre-start and
	// post-stop event handlers (nil: none), run like the app (its
	// Launch with this Exec).
	PreStart, PostStop []string
	// imagePorts are the ports the app's image names.
	imagePorts []types.Port
}

// EmptyVolume is a kind=empty volume, backed by <pod>/sharedVolumes/<name>.
type EmptyVolume struct {
	Name     string
	Path     string // absolute
	Mode     os.FileMode
	UID, GID int
}

// Load reads the pod directory dir (pod manifest and appsinfo) and builds
// every app's configuration for the run options.
func Load(ctx context.Context, dir string, opts *Options) (*Pod, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, PodManifestFile))
	if err != nil {
		return nil, fmt.Errorf("read the pod manifest: %w", err)
	}
	var pm schema.PodManifest
	if err := appcjson.Unmarshal(data, &pm); err != nil {
		return nil, fmt.Errorf("pod manifest %s: %w", filepath.Join(dir, PodManifestFile), err)
	}
	if len(pm.Apps) == 0 {
		return nil, errors.New("the pod manifest has no apps")
	}
	if opts.Interactive && len(pm.Apps) != 1 {
		return nil, fmt.Errorf("--interactive needs a pod with exactly one app, this one has %d", len(pm.Apps))
	}
	p := &Pod{UUID: opts.UUID, Dir: dir, Hostname: opts.Hostname, GracePeriod: DefaultGracePeriod, HandlerTimeout: DefaultHandlerTimeout}
	if v, ok := pm.Annotations.Get(GraceAnnotation); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("pod annotation %s=%q: want a duration like 30s", GraceAnnotation, v)
		}
		p.GracePeriod = d
	}
	if v, ok := pm.Annotations.Get(HandlerTimeoutAnnotation); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("pod annotation %s=%q: want a positive duration like 90s", HandlerTimeoutAnnotation, v)
		}
		p.HandlerTimeout = d
	}
	vols, empties, err := volumes(dir, pm.Volumes)
	if err != nil {
		return nil, err
	}
	p.EmptyVolumes = empties
	hosts, resolv, err := dnsFiles(dir, opts)
	if err != nil {
		return nil, err
	}
	mdsURL, err := metadataURL(dir, opts)
	if err != nil {
		return nil, err
	}
	for i := range pm.Apps {
		a, err := loadApp(dir, &pm.Apps[i], vols, opts)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", pm.Apps[i].Name, err)
		}
		if mdsURL != "" {
			a.Launch.Env = append(a.Launch.Env, stage1abi.MetadataURLEnv+"="+mdsURL)
		}
		a.Launch.HostsFile, a.Launch.ResolvConf = hosts, resolv
		if hosts == filepath.Join(dir, HostsFile) && imageHas(a.Launch.LowerDirs, "/etc/hosts") {
			a.Launch.HostsFile = "" // default mode: the image's own file wins
		}
		p.Apps = append(p.Apps, a)
	}
	if p.Ports, err = ports(pm.Ports, p.Apps); err != nil {
		return nil, err
	}
	if len(p.Ports) > 0 && !opts.NetContained() {
		return nil, fmt.Errorf("the pod manifest forwards %d host ports, which needs a network of the pod's own: run with --net=default (or other networks), not --net=%s", len(p.Ports), opts.Net)
	}
	return p, nil
}

// ports turns the pod manifest's exposed ports into port forwards. stage0
// fills in each one's pod port; one without is looked up by name among
// the ports the apps' images name. A port range (count N > 1) forwards N
// host ports from hostPort on, one to each of its pod ports, in order.
func ports(eps []types.ExposedPort, apps []*App) ([]networking.PortForward, error) {
	var out []networking.PortForward
	taken := map[string]string{} // "proto/hostIP/hostPort" -> name
	for _, ep := range eps {
		pp := ep.PodPort
		if pp == nil {
			for _, a := range apps {
				for i := range a.imagePorts {
					if a.imagePorts[i].Name == ep.Name && pp == nil {
						pp = &a.imagePorts[i]
					}
				}
			}
		}
		if pp == nil {
			return nil, fmt.Errorf("pod manifest: exposed port %s has no podPort and no app's image names a port %s: name one of the images' ports", ep.Name, ep.Name)
		}
		proto := strings.ToLower(pp.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" {
			return nil, fmt.Errorf("pod manifest: port %s: protocol %q cannot be forwarded (tcp and udp can)", ep.Name, pp.Protocol)
		}
		count := pp.Count
		if count == 0 {
			count = 1
		}
		if ep.HostPort == 0 || ep.HostPort+count-1 > 65535 {
			if count > 1 {
				return nil, fmt.Errorf("pod manifest: port %s: host ports %d-%d (a range of %d) are not all port numbers from 1 to 65535", ep.Name, ep.HostPort, ep.HostPort+count-1, count)
			}
			return nil, fmt.Errorf("pod manifest: port %s: host port %d is not a port number from 1 to 65535", ep.Name, ep.HostPort)
		}
		for i := uint(0); i < count; i++ {
			pf := networking.PortForward{Name: ep.Name.String(), Protocol: proto, PodPort: pp.Port + i, HostPort: ep.HostPort + i}
			if ep.HostIP != nil && !ep.HostIP.IsUnspecified() {
				pf.HostIP = ep.HostIP.String()
			}
			key := fmt.Sprintf("%s/%s/%d", proto, pf.HostIP, pf.HostPort)
			if other, dup := taken[key]; dup {
				return nil, fmt.Errorf("pod manifest: ports %s and %s both forward host port %d/%s: give them different host ports", other, ep.Name, pf.HostPort, proto)
			}
			taken[key] = ep.Name.String()
			out = append(out, pf)
		}
	}
	return out, nil
}

// imageHas reports whether a file exists in the image's layers.
func imageHas(lowers []string, p string) bool {
	for _, l := range lowers {
		if _, err := os.Lstat(filepath.Join(l, p)); err == nil {
			return true
		}
	}
	return false
}

// dnsFiles picks the host files bound on /etc/hosts and /etc/resolv.conf.
func dnsFiles(dir string, opts *Options) (hosts, resolv string, err error) {
	switch opts.ResolvMode {
	case "host":
		resolv = "/etc/resolv.conf"
	case "stage0":
		resolv = filepath.Join(dir, Stage0ResolvConf)
	case "default":
		if opts.NetHost() {
			resolv = "/etc/resolv.conf"
		}
	}
	switch opts.HostsMode {
	case "host":
		hosts = "/etc/hosts"
	case "stage0":
		hosts = filepath.Join(dir, Stage0HostsFile)
	default:
		hosts = filepath.Join(dir, HostsFile)
	}
	if resolv != "" {
		if _, err := os.Stat(resolv); err != nil {
			if opts.ResolvMode == "default" {
				resolv = "" // a host without resolv.conf
			} else {
				return "", "", fmt.Errorf("resolv.conf for the pod: %w", err)
			}
		}
	}
	return hosts, resolv, nil
}

// HostsContent is the generated /etc/hosts.
func HostsContent(hostname string) string {
	return "127.0.0.1\tlocalhost localhost.localdomain " + hostname + "\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n"
}

func readLines(p string) ([]string, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

func loadApp(dir string, ra *schema.RuntimeApp, vols map[string]types.Volume, opts *Options) (*App, error) {
	name := ra.Name.String()
	var im schema.ImageManifest
	data, err := os.ReadFile(filepath.Join(dir, AppManifest(name)))
	if err != nil {
		return nil, fmt.Errorf("read the image manifest stage0 wrote: %w", err)
	}
	if err := appcjson.Unmarshal(data, &im); err != nil {
		return nil, fmt.Errorf("image manifest %s: %w", AppManifest(name), err)
	}
	lowers, err := readLines(filepath.Join(dir, AppLowerDirs(name)))
	if err != nil {
		return nil, fmt.Errorf("read the image layers stage0 listed: %w", err)
	}
	app := ra.App
	if app == nil {
		app = im.App
	}
	if app == nil || len(app.Exec) == 0 {
		return nil, errors.New("nothing to execute: neither the pod manifest nor the image manifest has an exec")
	}
	a := &App{}
	if im.App != nil {
		a.imagePorts = im.App.Ports
	}
	if v, ok := im.Annotations.Get(NotifyAnnotation); ok && v == "true" {
		a.SupportsNotify = true
	}
	if v, ok := ra.Annotations.Get(SocketActivatedAnnotation); ok {
		a.SocketActivated = v
	} else if v, ok := im.Annotations.Get(SocketActivatedAnnotation); ok {
		a.SocketActivated = v
	}
	if a.SocketActivated != "" && a.SocketActivated != "true" && a.SocketActivated != "false" {
		return nil, fmt.Errorf("annotation %s=%q: want true or false", SocketActivatedAnnotation, a.SocketActivated)
	}
	for _, eh := range app.EventHandlers {
		if len(eh.Exec) == 0 {
			return nil, fmt.Errorf("event handler %s has an empty exec: give it a command", eh.Name)
		}
		switch eh.Name {
		case "pre-start":
			a.PreStart = append([]string(nil), eh.Exec...)
		case "post-stop":
			a.PostStop = append([]string(nil), eh.Exec...)
		default:
			return nil, fmt.Errorf("event handler %q: appc knows pre-start and post-stop only", eh.Name)
		}
	}
	limits, sec, err := applyIsolators(app.Isolators, ra.Annotations, opts)
	if err != nil {
		return nil, err
	}
	a.Limits = limits
	caps, err := stage2.CapNumbers(sec.caps)
	if err != nil {
		return nil, err
	}
	if sec.caps == nil {
		caps = nil
	}
	env := []string{}
	hasPath := false
	for _, ev := range app.Environment {
		env = append(env, ev.Name+"="+ev.Value)
		hasPath = hasPath || ev.Name == "PATH"
	}
	if !hasPath {
		env = append(env, "PATH="+DefaultPath)
	}
	env = append(env, "AC_APP_NAME="+name)
	if opts.Interactive {
		if _, ok := app.Environment.Get("TERM"); !ok {
			if t := os.Getenv("TERM"); t != "" {
				env = append(env, "TERM="+t)
			}
		}
	}
	mounts, inline, err := appMounts(dir, ra, app, vols)
	if err != nil {
		return nil, err
	}
	a.InlineVolumes = inline
	a.Launch = stage2.App{
		Name:              name,
		Root:              filepath.Join(dir, AppRoot(name)),
		LowerDirs:         lowers,
		UpperDir:          filepath.Join(dir, AppUpper(name)),
		WorkDir:           filepath.Join(dir, AppWork(name)),
		AppPidFile:        filepath.Join(dir, AppPid(name)),
		Exec:              append([]string(nil), app.Exec...),
		User:              app.User,
		Group:             app.Group,
		SupplementaryGIDs: app.SupplementaryGIDs,
		WorkingDir:        app.WorkingDirectory,
		Env:               env,
		ReadOnlyRootFS:    ra.ReadOnlyRootFS,
		Mounts:            mounts,
		OOMScoreAdj:       sec.oomAdj,
		Capabilities:      caps,
		NoNewPrivs:        sec.noNewPrivs,
		Seccomp:           sec.seccomp,
		MaskPaths:         !opts.DisablePaths,
		NewSession:        true,
		Terminal:          opts.Interactive,
	}
	return a, nil
}

// volumes indexes the pod's volumes and lists the empty ones.
func volumes(dir string, vs []types.Volume) (map[string]types.Volume, []EmptyVolume, error) {
	m := map[string]types.Volume{}
	var empties []EmptyVolume
	for _, v := range vs {
		m[v.Name.String()] = v
		switch v.Kind {
		case "host":
			if !filepath.IsAbs(v.Source) {
				return nil, nil, fmt.Errorf("volume %s: source %q must be an absolute host path", v.Name, v.Source)
			}
		case "empty":
			ev, err := emptyVolume(dir, v)
			if err != nil {
				return nil, nil, err
			}
			empties = append(empties, ev)
		default:
			return nil, nil, fmt.Errorf("volume %s: kind %q is not supported (host or empty)", v.Name, v.Kind)
		}
	}
	return m, empties, nil
}

func emptyVolume(dir string, v types.Volume) (EmptyVolume, error) {
	ev := EmptyVolume{Name: v.Name.String(), Path: filepath.Join(dir, SharedVolumesDir, v.Name.String()), Mode: 0o755}
	if v.Mode != nil {
		m, err := strconv.ParseUint(*v.Mode, 8, 32)
		if err != nil || m > 0o7777 {
			return ev, fmt.Errorf("volume %s: mode %q is not an octal permission like 0755", v.Name, *v.Mode)
		}
		ev.Mode = os.FileMode(m & 0o777)
		if m&0o4000 != 0 {
			ev.Mode |= os.ModeSetuid
		}
		if m&0o2000 != 0 {
			ev.Mode |= os.ModeSetgid
		}
		if m&0o1000 != 0 {
			ev.Mode |= os.ModeSticky
		}
	}
	if v.UID != nil {
		ev.UID = *v.UID
	}
	if v.GID != nil {
		ev.GID = *v.GID
	}
	return ev, nil
}

// appMounts turns the app's mounts (pod manifest: volume name → path)
// into binds. An image mount point of the same volume marked readOnly
// makes the bind read-only too.
func appMounts(dir string, ra *schema.RuntimeApp, app *types.App, vols map[string]types.Volume) ([]stage2.Mount, []EmptyVolume, error) {
	var out []stage2.Mount
	var inline []EmptyVolume
	for _, m := range ra.Mounts {
		v, ok := vols[m.Volume.String()]
		if m.AppVolume != nil {
			v, ok = *m.AppVolume, true
		}
		if !ok {
			return nil, nil, fmt.Errorf("mount on %s names volume %q, which the pod does not have", m.Path, m.Volume)
		}
		if !path.IsAbs(m.Path) {
			return nil, nil, fmt.Errorf("mount of volume %s: target %q must be an absolute path in the app", m.Volume, m.Path)
		}
		bm := stage2.Mount{Volume: v.Name.String(), Target: path.Clean(m.Path), Recursive: true}
		switch v.Kind {
		case "host":
			bm.Source = v.Source
			if v.ReadOnly != nil {
				bm.ReadOnly = *v.ReadOnly
			}
			if v.Recursive != nil {
				bm.Recursive = *v.Recursive
			}
		case "empty":
			ev, err := emptyVolume(dir, v)
			if err != nil {
				return nil, nil, err
			}
			if m.AppVolume != nil {
				inline = append(inline, ev)
			}
			bm.Source, bm.Recursive = ev.Path, false
			if v.ReadOnly != nil {
				bm.ReadOnly = *v.ReadOnly
			}
		default:
			return nil, nil, fmt.Errorf("volume %s: kind %q is not supported (host or empty)", v.Name, v.Kind)
		}
		for _, mp := range app.MountPoints {
			if mp.Name == m.Volume && mp.ReadOnly {
				bm.ReadOnly = true
			}
		}
		out = append(out, bm)
	}
	return out, inline, nil
}
