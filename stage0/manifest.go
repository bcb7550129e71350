package stage0

import (
	"context"
	"fmt"
	"net"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"
	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/networking/netflag"
	"github.com/rkt/rkt/pkg/ident"
)

// buildPodManifest fetches each app's image and builds the pod manifest,
// resolving users and groups to numbers and checking that every
// executable exists, so that mistakes fail here, before any pod exists.
func buildPodManifest(ctx context.Context, f *Fetcher, spec *PodSpec) (*schema.PodManifest, []*imagestore.ImageInfo, error) {
	if spec.PodManifest != nil {
		return podManifestAsGiven(ctx, f, spec.PodManifest, spec.Consent)
	}
	if len(spec.Apps) == 0 {
		return nil, nil, errNoApps
	}
	if err := spec.Check(); err != nil {
		return nil, nil, err
	}
	pm := schema.BlankPodManifest()
	pm.Volumes = spec.Volumes
	for k, v := range spec.Annotations {
		pm.Annotations.Set(types.ACIdentifier(k), v)
	}
	var infos []*imagestore.ImageInfo
	names := map[string]bool{}
	var err error
	for _, as := range spec.Apps {
		f.Signature = as.Signature
		info, err := f.Fetch(ctx, as.Image)
		if err != nil {
			return nil, nil, err
		}
		im, err := info.ParsedManifest()
		if err != nil {
			return nil, nil, err
		}
		ra, err := runtimeApp(f, spec, &as, info, im, names)
		if err != nil {
			if ra == nil {
				return nil, nil, fmt.Errorf("image %s: %w", as.Image, err)
			}
			return nil, nil, fmt.Errorf("app %s (%s): %w", ra.Name, as.Image, err)
		}
		pm.Apps = append(pm.Apps, *ra)
		infos = append(infos, info)
	}
	if err := checkVolumes(pm); err != nil {
		return nil, nil, err
	}
	if pm.Ports, err = exposedPorts(pm, spec.Ports); err != nil {
		return nil, nil, err
	}
	return pm, infos, nil
}

// exposedPorts matches --port flags with the ports the apps' images name,
// and writes them as the pod manifest's ports with the pod side filled in.
func exposedPorts(pm *schema.PodManifest, flags []netflag.PortFlag) ([]types.ExposedPort, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	var named []netflag.ManifestPort
	for _, ra := range pm.Apps {
		for _, p := range ra.App.Ports {
			named = append(named, netflag.ManifestPort{Name: p.Name.String(), Protocol: p.Protocol, Port: p.Port})
		}
	}
	fwds, err := netflag.ResolvePorts(flags, named)
	if err != nil {
		return nil, err
	}
	out := make([]types.ExposedPort, 0, len(fwds))
	for _, f := range fwds {
		name := f.Name
		if name == "" {
			name = fmt.Sprintf("%d-%s", f.PodPort, f.Protocol)
		}
		acn, err := types.SanitizeACName(name)
		if err != nil {
			return nil, fmt.Errorf("--port: port name %q: %v", name, err)
		}
		ep := types.ExposedPort{Name: *types.MustACName(acn), HostPort: f.HostPort,
			PodPort: &types.Port{Name: *types.MustACName(acn), Protocol: f.Protocol, Port: f.PodPort, Count: 1}}
		if f.HostIP != "" {
			ep.HostIP = net.ParseIP(f.HostIP)
		}
		out = append(out, ep)
	}
	return out, nil
}

func runtimeApp(f *Fetcher, spec *PodSpec, as *AppSpec, info *imagestore.ImageInfo, im *schema.ImageManifest, names map[string]bool) (*schema.RuntimeApp, error) {
	name := as.Name
	if name == "" {
		name = defaultAppName(im.Name.String())
		for i := 2; names[name]; i++ {
			name = fmt.Sprintf("%s-%d", defaultAppName(im.Name.String()), i)
		}
	}
	acn, err := types.NewACName(name)
	if err != nil {
		return nil, fmt.Errorf("app name %q: %v", name, err)
	}
	ra := &schema.RuntimeApp{Name: *acn, ReadOnlyRootFS: as.ReadOnlyRootFS, Mounts: as.Mounts}
	if names[name] {
		return ra, fmt.Errorf("two apps are named %q: give one --name", name)
	}
	names[name] = true
	hash, err := types.NewHash(info.Key)
	if err != nil {
		return ra, err
	}
	ra.Image = schema.RuntimeImage{Name: &im.Name, ID: *hash, Labels: im.Labels}
	app := types.App{User: "0", Group: "0"}
	if im.App != nil {
		app = *im.App
		app.Exec = append(types.Exec(nil), im.App.Exec...)
		app.Isolators = append(types.Isolators(nil), im.App.Isolators...)
		app.Environment = append(types.Environment(nil), im.App.Environment...)
	}
	if app.Exec, err = appExec(app.Exec, as.Exec, as.Args); err != nil {
		return ra, err
	}
	if as.User != "" {
		app.User = as.User
	}
	if as.Group != "" {
		app.Group = as.Group
	}
	if as.SupplementaryGIDs != nil {
		app.SupplementaryGIDs = as.SupplementaryGIDs
	}
	if as.WorkingDir != "" {
		app.WorkingDirectory = as.WorkingDir
	}
	// The operator's isolator flags replace the image's of their kind;
	// what remains of the image's may narrow the defaults, not widen them.
	app.Isolators = imageIsolatorsKept(app.Isolators, as.Isolators)
	if err := checkImageIsolators(app.Isolators, spec.Consent, true); err != nil {
		return ra, err
	}
	app.Isolators = append(app.Isolators, as.Isolators...)
	app.Environment = mergeEnv(spec, app.Environment, as.Environment)
	if err := checkLimits(&app); err != nil {
		return ra, err
	}
	rootfs, err := f.Store.TreeRootfs(info)
	if err != nil {
		return ra, err
	}
	if err := resolveIDs(rootfs, &app); err != nil {
		return ra, err
	}
	if err := checkExec(rootfs, &app); err != nil {
		return ra, err
	}
	for _, mp := range app.MountPoints {
		if !hasMount(ra.Mounts, mp.Path) {
			ra.Mounts = append(ra.Mounts, schema.Mount{Volume: mp.Name, Path: mp.Path})
		}
	}
	for k, v := range as.Annotations {
		ra.Annotations.Set(types.ACIdentifier(k), v)
	}
	ra.App = &app
	return ra, nil
}

func hasMount(ms []schema.Mount, p string) bool {
	for _, m := range ms {
		if path.Clean(m.Path) == path.Clean(p) {
			return true
		}
	}
	return false
}

// defaultAppName derives an app name from an image name's last component.
func defaultAppName(image string) string {
	n := path.Base(image)
	if s, err := types.SanitizeACName(n); err == nil {
		return s
	}
	return "app"
}

// systemdProcessEnv are the variables of systemd's protocols that speak
// to rkt's own process (its pid, its descriptors, its notify socket): they
// are not inherited; stage1 gives each app its own where it takes part
// (docs/systemd.md, "Protocols").
var systemdProcessEnv = map[string]bool{
	"NOTIFY_SOCKET": true, "LISTEN_FDS": true, "LISTEN_PID": true, "LISTEN_FDNAMES": true,
	"WATCHDOG_USEC": true, "WATCHDOG_PID": true,
}

// mergeEnv applies rkt's precedence: inherited < image < --set-env-file <
// --set-env < per-app --environment.
func mergeEnv(spec *PodSpec, image types.Environment, app []string) types.Environment {
	var env types.Environment
	if spec.InheritEnv {
		for _, kv := range os.Environ() {
			// Names the pod manifest cannot hold (bash's exported
			// functions, BASH_FUNC_f%%) are not inherited.
			if k, v, ok := strings.Cut(kv, "="); ok && envName.MatchString(k) && !systemdProcessEnv[k] {
				env.Set(k, v)
			}
		}
	}
	for _, ev := range image {
		env.Set(ev.Name, ev.Value)
	}
	for _, list := range [][]string{spec.SetEnvFile, spec.SetEnv, app} {
		for _, kv := range list {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env.Set(k, v)
			}
		}
	}
	return env
}

// checkVolumes requires every pod volume to be mounted somewhere and every
// mount to name a volume; mount points of images without a volume get an
// empty one, as Docker's VOLUME does.
func checkVolumes(pm *schema.PodManifest) error {
	vols := map[string]bool{}
	for _, v := range pm.Volumes {
		vols[v.Name.String()] = true
	}
	used := map[string]bool{}
	for i := range pm.Apps {
		for _, m := range pm.Apps[i].Mounts {
			used[m.Volume.String()] = true
			if vols[m.Volume.String()] {
				continue
			}
			if isImageMountPoint(pm.Apps[i].App, m) {
				vols[m.Volume.String()] = true
				pm.Volumes = append(pm.Volumes, emptyVolume(m.Volume))
				continue
			}
			return fmt.Errorf("app %s: --mount names volume %q, but no --volume %s,... is given", pm.Apps[i].Name, m.Volume, m.Volume)
		}
	}
	for _, v := range pm.Volumes {
		if !used[v.Name.String()] {
			return fmt.Errorf("volume %q is not mounted by any app: add --mount volume=%s,target=PATH after an image, or use an image with a mount point named %s", v.Name, v.Name, v.Name)
		}
	}
	return nil
}

// emptyVolume is the volume an image's mount point gets when no --volume
// names it: empty, mode 0755, owned by root (the defaults of
// --volume NAME,kind=empty).
func emptyVolume(name types.ACName) types.Volume {
	mode, uid, gid := "0755", 0, 0
	return types.Volume{Name: name, Kind: "empty", Mode: &mode, UID: &uid, GID: &gid}
}

func isImageMountPoint(app *types.App, m schema.Mount) bool {
	for _, mp := range app.MountPoints {
		if mp.Name == m.Volume && path.Clean(mp.Path) == path.Clean(m.Path) {
			return true
		}
	}
	return false
}

// resolveIDs turns user and group names (or image paths) into numbers
// using the image's /etc/passwd and /etc/group, so that a missing user
// fails before the pod exists and stage1 gets numbers only.
func resolveIDs(rootfs string, app *types.App) error {
	id, err := ident.ResolveIn(rootfs, app.User, app.Group)
	if err != nil {
		return fmt.Errorf("user %q, group %q: %w", app.User, app.Group, err)
	}
	app.User, app.Group = strconv.Itoa(id.UID), strconv.Itoa(id.GID)
	return nil
}

// appExec is the app's command line from the image's (image), --exec
// (exec) and the arguments after "--" (args, nil when there was no
// "--"): --exec replaces the image's whole command line, arguments
// included, unless arguments are given; arguments alone replace the
// image's arguments.
func appExec(image types.Exec, exec string, args []string) (types.Exec, error) {
	out := append(types.Exec(nil), image...)
	if exec != "" {
		out = types.Exec{exec}
	}
	if args != nil {
		if len(out) == 0 {
			return nil, fmt.Errorf("arguments given but the image has no executable: add --exec")
		}
		out = append(types.Exec{out[0]}, args...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the image has no app to run: give --exec=PATH")
	}
	return out, nil
}

// checkExec makes sure the app's executable exists in the image and can be
// executed. Relative names are looked up in the app's PATH.
func checkExec(rootfs string, app *types.App) error {
	exe := app.Exec[0]
	if !strings.HasPrefix(exe, "/") {
		pathEnv, ok := app.Environment.Get("PATH")
		if !ok {
			pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
		}
		for _, d := range strings.Split(pathEnv, ":") {
			if p, err := securejoin.SecureJoin(rootfs, path.Join(d, exe)); err == nil {
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
					return nil
				}
			}
		}
		return fmt.Errorf("executable %q not found in the image's PATH (%s)", exe, pathEnv)
	}
	p, err := securejoin.SecureJoin(rootfs, exe)
	if err != nil {
		return err
	}
	st, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("executable %s not found in the image", exe)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s in the image is not a regular file", exe)
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s in the image is not executable (mode %v)", exe, st.Mode().Perm())
	}
	return nil
}

// podManifestAsGiven fetches the images a --pod-manifest names (by ID).
// The operator wrote the manifest, so an app section in it is theirs; an
// app without one runs its image's app, whose isolators are checked as
// an image's.
func podManifestAsGiven(ctx context.Context, f *Fetcher, pm *schema.PodManifest, c Consent) (*schema.PodManifest, []*imagestore.ImageInfo, error) {
	var infos []*imagestore.ImageInfo
	for i := range pm.Apps {
		ra := &pm.Apps[i]
		var info *imagestore.ImageInfo
		var err error
		if !ra.Image.ID.Empty() {
			info, err = f.Store.Resolve(ra.Image.ID.String())
		} else if ra.Image.Name != nil {
			info, err = f.Fetch(ctx, ra.Image.Name.String())
		} else {
			err = fmt.Errorf("app %s names no image", ra.Name)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("pod manifest, app %s: %w", ra.Name, err)
		}
		if ra.App == nil {
			im, err := info.ParsedManifest()
			if err != nil {
				return nil, nil, err
			}
			if im.App == nil {
				return nil, nil, fmt.Errorf("pod manifest, app %s: neither the manifest nor the image has an app", ra.Name)
			}
			if err := checkImageIsolators(im.App.Isolators, c, false); err != nil {
				return nil, nil, fmt.Errorf("pod manifest, app %s (image %s): %w", ra.Name, im.Name, err)
			}
			app := *im.App
			ra.App = &app
		}
		if err := checkLimits(ra.App); err != nil {
			return nil, nil, fmt.Errorf("pod manifest, app %s: %w", ra.Name, err)
		}
		rootfs, err := f.Store.TreeRootfs(info)
		if err != nil {
			return nil, nil, err
		}
		if err := resolveIDs(rootfs, ra.App); err != nil {
			return nil, nil, fmt.Errorf("pod manifest, app %s: %w", ra.Name, err)
		}
		infos = append(infos, info)
	}
	return pm, infos, nil
}
