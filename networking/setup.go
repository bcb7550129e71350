package networking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// cacheDirName is libcni's cache (results of ADD, used by DEL), kept in
// the pod directory so that it goes away with the pod.
const cacheDirName = "net-cache"

// hooks are the steps tests replace.
type hooks struct {
	loopbackUp func(netnsPath string) error
	netnsID    func(netnsPath string) string
	// teardownIPMasq removes a masquerading network's per-pod rules when
	// its DEL could not (the network namespace is gone), in the firewall
	// backend they were made with.
	teardownIPMasq func(ni *NetInfo, podUUID, backend string) error
	// ensureMasq makes sure a shared masquerading rule exists, taking a
	// lock in lockDir, and reports whether it added it.
	ensureMasq func(ctx context.Context, lockDir string, r masqRule) (bool, error)
	// inProcess runs a built-in network's plugin call in this process
	// when it can (handled), instead of exec'ing the plugin; nil execs
	// always.
	inProcess inProcessFunc
	// checkRoutes refuses networks whose ranges the host uses already;
	// nil checks nothing.
	checkRoutes func(nets []*network) error
	// ensureGuard makes sure rkt's shared isolation rules exist (see
	// guard.go), taking a lock in the host-wide directory, and returns
	// the iptables-save output it read ("" if none); nil skips.
	ensureGuard func(ctx context.Context, hostDir, backend string) (bool, string, error)
	// markIfaces puts a network's host-side interfaces in its device
	// group; nil skips.
	markIfaces func(res *current.Result, group uint32) error
	// claimPorts and releasePorts keep host ports exclusive (see
	// ports_linux.go); nil skips.
	claimPorts   func(hostDir, podUUID, podDir string, ports []PortForward) error
	releasePorts func(hostDir, podUUID string, ports []PortForward) error
}

// inProcessFunc runs a plugin call (the plugin's path, its stdin and CNI_
// environment) in this process if it can, and says whether it did.
type inProcessFunc func(ctx context.Context, pluginPath string, stdin []byte, environ []string) (out []byte, handled bool, err error)

var osHooks = hooks{
	loopbackUp: loopbackUp, netnsID: netnsID, teardownIPMasq: teardownIPMasq, ensureMasq: ensureMasq, inProcess: ptpInProcess,
	checkRoutes: checkHostRoutes, ensureGuard: ensureGuard, markIfaces: markHostIfaces,
	claimPorts: claimPorts, releasePorts: releasePorts,
}

// Setup sets up the networks reqs asks for in the network namespace at
// netnsPath (e.g. /proc/<pid>/ns/net of the pod's first process): it
// brings lo up (unless cfg.LoopbackReady), runs each network's CNI ADD in order (the pod's
// interfaces are eth0, eth1, ...), forwards ports through the first
// network that masquerades (else the last one asked for), and records
// everything in <podDir>/net-info.json. While the built-in default
// network's ADD runs, it makes sure the network's one shared
// masquerading rule exists (its plugin does not masquerade per pod). When the pod is
// not on the default network, default-restricted is added last. If any step fails, the
// networks already added are deleted again, in reverse order, before the
// error is returned.
func Setup(ctx context.Context, podUUID, podDir, netnsPath string, reqs []Request, ports []PortForward, cfg Config) ([]NetInfo, error) {
	return setup(ctx, podUUID, podDir, netnsPath, reqs, ports, &cfg, osHooks)
}

func setup(ctx context.Context, podUUID, podDir, netnsPath string, reqs []Request, ports []PortForward, cfg *Config, h hooks) (nis []NetInfo, err error) {
	start := time.Now()
	if netnsPath == "" {
		return nil, errors.New("set up networks: no network namespace given")
	}
	nets, err := cfg.plan(reqs, ports)
	if err != nil {
		return nil, err
	}
	cfg.logf("networking: networks %s planned (%s)", describeNets(nets), ms(time.Since(start)))
	if h.checkRoutes != nil {
		if err := h.checkRoutes(nets); err != nil {
			return nil, err
		}
	}
	if !cfg.LoopbackReady {
		if err := h.loopbackUp(netnsPath); err != nil {
			return nil, err
		}
		cfg.logf("networking: lo up (%s)", ms(time.Since(start)))
	}
	if h.claimPorts != nil && len(ports) > 0 {
		if err := h.claimPorts(cfg.hostDir(), podUUID, podDir, ports); err != nil {
			return nil, err
		}
		cfg.logf("networking: host ports claimed (%s)", ms(time.Since(start)))
		defer func() {
			if err != nil {
				h.releasePorts(cfg.hostDir(), podUUID, ports)
			}
		}()
	}
	// rkt's isolation rules are made sure of while the plugins run; the
	// shared masquerading rule is looked for in what that check read.
	guardDone := make(chan guardResult, 1)
	go func() { guardDone <- ensureGuardRules(ctx, cfg, h) }()
	guardWait := sync.OnceValue(func() guardResult { return <-guardDone })
	defer guardWait()
	nsID := h.netnsID(netnsPath)
	nis = make([]NetInfo, len(nets))
	lists := make([]*libcni.NetworkConfigList, len(nets))
	for i, n := range nets {
		if lists[i], err = n.confList(); err != nil {
			return nil, err
		}
		nis[i] = NetInfo{
			Name: n.name, ConfPath: n.file, IfName: n.ifName, Args: n.args, Ports: n.ports,
			Auto: n.auto, NetNS: netnsPath, NetNSID: nsID, Config: lists[i].Bytes,
		}
	}
	// Recorded before any ADD, so that a crash halfway through leaves
	// enough for gc to undo what was done.
	if err := writeNetInfo(podDir, nis); err != nil {
		return nil, err
	}
	backend := ""
	for i, n := range nets {
		t := time.Now()
		cni := newCNI(cfg, podDir, &nis[i], h)
		if n.sharedMasq && backend == "" {
			backend = firewallBackend()
		}
		// The shared masquerading rule is made sure of while the plugins
		// run (an iptables run costs a few ms): no app starts before both
		// are done.
		masqDone := make(chan error, 1)
		go func() { masqDone <- ensureMasqRules(ctx, n.masqRules(backend), cfg, h, guardWait) }()
		res, err := cni.AddNetworkList(ctx, lists[i], runtimeConf(podUUID, netnsPath, &nis[i]))
		var cr *current.Result
		if err == nil {
			cr, err = nis[i].setResult(res)
		}
		if err != nil {
			err = explain(n, podUUID, err)
		} else if h.markIfaces != nil {
			err = h.markIfaces(cr, n.group())
		}
		if merr := <-masqDone; merr != nil && err == nil {
			err = merr
		}
		if i == len(nets)-1 && err == nil {
			err = guardWait().err
		}
		if err != nil {
			if rerr := rollback(context.WithoutCancel(ctx), podUUID, podDir, nis[:i+1], cfg, h); rerr != nil {
				return nil, fmt.Errorf("%w (and undoing the networks set up so far failed too: %w: run `rkt gc` to retry)", err, rerr)
			}
			return nil, err
		}
		cfg.logf("networking: network %s on %s: %s (%s)", n.name, n.ifName, strings.Join(nis[i].IPs, ","), ms(time.Since(t)))
	}
	if err := writeNetInfo(podDir, nis); err != nil {
		if rerr := rollback(context.WithoutCancel(ctx), podUUID, podDir, nis, cfg, h); rerr != nil {
			return nil, fmt.Errorf("%w (and undoing the networks failed too: %w)", err, rerr)
		}
		return nil, err
	}
	cfg.logf("networking: done (%s)", ms(time.Since(start)))
	return nis, nil
}

// ensureMasqRules makes sure a network's shared masquerading rules
// exist (rules is empty for the networks whose plugins masquerade, if
// they do). A rule the isolation check's iptables-save showed (guard)
// is not checked again.
func ensureMasqRules(ctx context.Context, rules []masqRule, cfg *Config, h hooks, guard func() guardResult) error {
	for _, r := range rules {
		t := time.Now()
		if r.backend == "iptables" && len(rules) > 0 {
			if g := guard(); g.err == nil && natHasMasq(g.save, r) {
				cfg.logf("networking: shared %s: present, seen by the isolation check (%s)", r, ms(time.Since(t)))
				continue
			}
		}
		added, err := h.ensureMasq(ctx, cfg.DataDir, r)
		if err != nil {
			return fmt.Errorf("network %s: %w", r.network, err)
		}
		what := "present"
		if added {
			what = "added"
		}
		cfg.logf("networking: shared %s: %s (%s)", r, what, ms(time.Since(t)))
	}
	return nil
}

// guardResult is the outcome of the check of the isolation rules, and
// the iptables-save output it read.
type guardResult struct {
	save string
	err  error
}

// ensureGuardRules makes sure rkt's isolation rules exist.
func ensureGuardRules(ctx context.Context, cfg *Config, h hooks) guardResult {
	if h.ensureGuard == nil {
		return guardResult{}
	}
	t := time.Now()
	changed, save, err := h.ensureGuard(ctx, cfg.hostDir(), firewallBackend())
	if err != nil {
		return guardResult{err: err}
	}
	what := "present"
	if changed {
		what = "put in place"
	}
	cfg.logf("networking: isolation rules %s (%s)", what, ms(time.Since(t)))
	return guardResult{save: save}
}

// rollback deletes networks Setup added, in reverse, like Teardown (so
// also if the pod's network namespace vanished meanwhile), and forgets
// them if that worked.
func rollback(ctx context.Context, podUUID, podDir string, nis []NetInfo, cfg *Config, h hooks) error {
	var errs []error
	for i := len(nis) - 1; i >= 0; i-- {
		// A plugin that could not be found did nothing to undo.
		if err := teardownOne(ctx, cfg, podUUID, podDir, &nis[i], h); err != nil && !errors.Is(err, ErrPluginNotFound) {
			errs = append(errs, fmt.Errorf("network %s: %w", nis[i].Name, err))
			continue
		}
		cfg.logf("networking: network %s rolled back", nis[i].Name)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	os.RemoveAll(filepath.Join(podDir, cacheDirName))
	if err := os.Remove(filepath.Join(podDir, NetInfoFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Teardown undoes Setup for a pod: CNI DEL for every network in its
// net-info.json, in reverse order, then the masquerading rules, port
// forwards and IPAM leases its plugins could not remove because the pod's
// network namespace is gone (a pod killed with SIGKILL). It can be run
// again after a failure, and on a pod that has no networks.
func Teardown(ctx context.Context, podUUID, podDir string, cfg Config) error {
	return teardown(ctx, podUUID, podDir, &cfg, osHooks)
}

func teardown(ctx context.Context, podUUID, podDir string, cfg *Config, h hooks) error {
	start := time.Now()
	nis, err := LoadNetInfo(podDir)
	if err != nil || len(nis) == 0 {
		return err
	}
	var errs []error
	for i := len(nis) - 1; i >= 0; i-- {
		ni := &nis[i]
		if err := teardownOne(ctx, cfg, podUUID, podDir, ni, h); err != nil {
			errs = append(errs, fmt.Errorf("network %s: %w", ni.Name, err))
			continue
		}
		cfg.logf("networking: network %s torn down (%s)", ni.Name, ms(time.Since(start)))
	}
	// The pod no longer runs: its port claims go whatever happened.
	for _, ni := range nis {
		if h.releasePorts != nil && len(ni.Ports) > 0 {
			if err := h.releasePorts(cfg.hostDir(), podUUID, ni.Ports); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("tear down the networks of pod %s: %w: fix the cause and run `rkt gc` again", podUUID, errors.Join(errs...))
	}
	return nil
}

func teardownOne(ctx context.Context, cfg *Config, podUUID, podDir string, ni *NetInfo, h hooks) error {
	cni := newCNI(cfg, podDir, ni, h)
	list, err := libcni.ConfListFromBytes(ni.Config)
	if err != nil {
		return fmt.Errorf("recorded configuration: %w", err)
	}
	netns := ""
	if ni.NetNS != "" && ni.NetNSID != "" && h.netnsID(ni.NetNS) == ni.NetNSID {
		netns = ni.NetNS
	}
	rt := runtimeConf(podUUID, netns, ni)
	if res, _ := cni.GetNetworkListCachedResult(list, rt); res == nil && len(ni.Result) > 0 {
		// libcni's cache is gone: give DEL the recorded result instead.
		if list, err = withPrevResult(list, ni.Result); err != nil {
			return err
		}
	}
	if netns == "" && len(ni.IPs) == 0 {
		// ADD may have been interrupted before it was recorded: find the
		// addresses from the IPAM leases before DEL releases them.
		ni.IPs = leasedAddrs(ni, podUUID)
	}
	// DEL the plugins that are there even if one is missing.
	list, missing := installedOnly(list, cfg.PluginDirs)
	if err := cni.DelNetworkList(ctx, list, rt); err != nil {
		if len(rt.Args) == 0 || ctx.Err() != nil {
			return err
		}
		// A plugin that rejects the operator's --net args (the bridge
		// plugin without IgnoreUnknown refuses IP=) refuses them in DEL
		// too: DEL needs no args to release what was set up (the
		// container ID and interface name identify it), so try again
		// without, rather than keep the pod forever.
		cfg.logf("networking: network %s: DEL with args %v failed (%v); again without them", ni.Name, rt.Args, err)
		noArgs := *rt
		noArgs.Args = nil
		if err2 := cni.DelNetworkList(ctx, list, &noArgs); err2 != nil {
			return fmt.Errorf("%w (and without the --net args: %w)", err, err2)
		}
	}
	if masq, backend := masquerades(list); netns == "" && masq {
		if err := h.teardownIPMasq(ni, podUUID, masqBackend(backend)); err != nil {
			return err
		}
	}
	return missing
}

// installedOnly drops the plugins that cannot be found from a list, and
// returns an error naming them.
func installedOnly(list *libcni.NetworkConfigList, dirs []string) (*libcni.NetworkConfigList, error) {
	var errs []error
	out := *list
	out.Plugins = nil
	for _, p := range list.Plugins {
		if _, err := invoke.FindInPath(p.Network.Type, dirs); err != nil {
			errs = append(errs, fmt.Errorf("%w: %q in %s, so what it set up is left: install it and run `rkt gc` again", ErrPluginNotFound, p.Network.Type, strings.Join(dirs, ":")))
			continue
		}
		out.Plugins = append(out.Plugins, p)
	}
	return &out, errors.Join(errs...)
}

// withPrevResult puts a recorded result into every plugin's configuration.
func withPrevResult(list *libcni.NetworkConfigList, result json.RawMessage) (*libcni.NetworkConfigList, error) {
	var prev map[string]any
	if err := json.Unmarshal(result, &prev); err != nil {
		return nil, fmt.Errorf("recorded result: %w", err)
	}
	out := *list
	out.Plugins = make([]*libcni.PluginConfig, len(list.Plugins))
	for i, p := range list.Plugins {
		np, err := libcni.InjectConf(p, map[string]any{"prevResult": prev})
		if err != nil {
			return nil, err
		}
		out.Plugins[i] = np
	}
	return &out, nil
}

// masquerades reports whether a plugin of the list set up per-pod IP
// masquerading (ptp and bridge do it with the same rules, named after the
// network and the container ID; removing rules that are not there costs
// only time), and the backend it named ("" for the plugins' default).
// The built-in default network's configuration says ipMasq false, as rkt
// masquerades it with a shared rule; pods set up before that recorded
// true, and still get their rules removed.
func masquerades(list *libcni.NetworkConfigList) (bool, string) {
	for _, p := range list.Plugins {
		var c struct {
			IPMasq        bool   `json:"ipMasq"`
			IPMasqBackend string `json:"ipMasqBackend"`
		}
		if json.Unmarshal(p.Bytes, &c) == nil && c.IPMasq {
			return true, c.IPMasqBackend
		}
	}
	return false, ""
}

func runtimeConf(podUUID, netns string, ni *NetInfo) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: podUUID, NetNS: netns, IfName: ni.IfName, Args: ni.Args}
	if len(ni.Ports) > 0 {
		pm := make([]map[string]any, len(ni.Ports))
		for i, p := range ni.Ports {
			m := map[string]any{"hostPort": p.HostPort, "containerPort": p.PodPort, "protocol": p.Protocol}
			if p.HostIP != "" {
				m["hostIP"] = p.HostIP
			}
			pm[i] = m
		}
		rt.CapabilityArgs = map[string]any{"portMappings": pm}
	}
	return rt
}

func (ni *NetInfo) setResult(res types.Result) (*current.Result, error) {
	if res == nil {
		return nil, errors.New("the plugins returned no result")
	}
	cr, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, fmt.Errorf("the plugins' result: %w", err)
	}
	ni.fillFromResult(cr)
	if ni.Result, err = json.Marshal(res); err != nil {
		return nil, fmt.Errorf("the plugins' result: %w", err)
	}
	return cr, nil
}

// newCNI returns libcni for one of a pod's networks. The built-in
// networks' (no configuration file) plugin calls run in this process
// when h.inProcess can, see ptpInProcess.
func newCNI(cfg *Config, podDir string, ni *NetInfo, h hooks) *libcni.CNIConfig {
	e := &timedExec{raw: &invoke.RawExec{}, dec: version.PluginDecoder{}, logf: cfg.logf}
	if ni.ConfPath == "" {
		e.inProcess = h.inProcess
	}
	return libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(podDir, cacheDirName), e)
}

// timedExec runs plugins like libcni's default (or in this process, see
// inProcess), and logs how long each took.
type timedExec struct {
	raw       *invoke.RawExec
	dec       version.PluginDecoder
	logf      func(format string, args ...any)
	inProcess inProcessFunc
}

var _ invoke.Exec = (*timedExec)(nil)

func (e *timedExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	t := time.Now()
	var out []byte
	var err error
	handled, how := false, "in process"
	if e.inProcess != nil {
		out, handled, err = e.inProcess(ctx, pluginPath, stdin, environ)
	}
	if !handled {
		how = "exec"
		out, err = e.raw.ExecPlugin(ctx, pluginPath, stdin, environ)
	}
	e.logf("networking:   plugin %s %s (%s): %s", filepath.Base(pluginPath), cniVar(environ, "CNI_COMMAND"), how, ms(time.Since(t)))
	return out, err
}

// cniVar returns the value of the variable key (CNI_COMMAND, ...) in a
// plugin's environment, "" if it is not set.
func cniVar(environ []string, key string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

func (e *timedExec) FindInPath(plugin string, paths []string) (string, error) {
	return e.raw.FindInPath(plugin, paths)
}

func (e *timedExec) Decode(b []byte) (version.PluginInfo, error) { return e.dec.Decode(b) }

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
}
