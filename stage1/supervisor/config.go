// Package supervisor is process 1 of a pod (default flavor): it starts one
// stage2 launcher per app, reaps every process of the pod, records each
// app's exit status, applies the exit policy (onAnyFailure: an app that
// fails stops the pod), forwards SIGTERM/SIGINT to the apps and SIGKILLs
// what is left after a grace period, and reports readiness to the pod's
// host-side process (which tells systemd).
//
// It is built into the default flavor's small binary (/init), together
// with the host-side process (stage1/host), and stays resident for the
// pod's whole life: it imports neither encoding/json nor fmt nor any
// large package, so that its memory stays small. Its configuration comes
// in the line format of Config.Encode.
package supervisor

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// ArgvName is the supervisor's argv[0], the dispatch key of the small
// stage1 binary.
const ArgvName = "rkt-supervisor"

// LauncherArgvName is the stage2 launcher's argv[0].
const LauncherArgvName = "rkt-stage2"

// Descriptors of the supervisor (see the protocol in stage1/default).
const (
	// ConfigFd: setup helper -> supervisor: Config (Encode), then the
	// start line (StartLine) once the pod's networks are set up, then EOF.
	ConfigFd = 3
	// EventFd: supervisor -> host-side process: "ready\n" once every app
	// runs, "exiting\n" once every app has exited, and the apps'
	// notifications to relay to systemd (NotifyEvent).
	EventFd = 4
	// TerminalFd (interactive pods only): a unix socket to the host-side
	// process, passed on to the interactive app's launcher as its
	// LaunchTerminalFd.
	TerminalFd = 5
	// LogFd (pods without a terminal): a unix seqpacket socket to the
	// host-side process. Before it starts any launcher, the supervisor
	// makes a pipe for each app's stdout and one for its stderr, and
	// sends the read ends, one message per app: LogApp + the app's name,
	// with the two descriptors (SCM_RIGHTS; none for an app that has a
	// terminal), then closes the socket. The host-side process, out of
	// the pod's reach, reads them (pkg/podlog).
	LogFd = 6
)

// LogApp begins each message on LogFd.
const LogApp = "app "

// ListenFd is the supervisor's first socket of socket activation, when
// the host-side process passes it sockets (Config.ListenFds of them):
// ListenFd..ListenFd+ListenFds-1.
const ListenFd = LogFd + 1

// LaunchListenFdsEnv is the one variable of a launcher's environment: the
// number N of sockets of socket activation it has as descriptors 3..3+N-1
// for its app; the descriptors below (LaunchConfigFd, ...) then come N
// higher. Absent: none.
const LaunchListenFdsEnv = "RKT_LISTEN_FDS"

// Descriptors of a launcher, run as `rkt-stage2 [CGROUP]` (a cgroup v2
// directory to join besides the App's, when it could not be started in
// it), without sockets of socket activation (LaunchListenFdsEnv).
const (
	// LaunchConfigFd: supervisor -> launcher: the app's stage2.App as
	// JSON (one line), then the start line, then EOF.
	LaunchConfigFd = 3
	// LaunchStatusFd: launcher -> supervisor: "<code> <message>\n" on
	// failure; EOF (close on exec) once the app is exec'd.
	LaunchStatusFd = 4
	// LaunchTerminalFd (the interactive app only, stage2.App.Terminal):
	// a unix stream socket to the host-side process. The launcher opens
	// a pseudo-terminal in the app's own devpts, sends its master with
	// SCM_RIGHTS (one message, "pty"), and before it execs the app waits
	// for "ok\n", the host's word that the terminal is set up (window
	// size, modes): see TerminalMaster and TerminalReady.
	LaunchTerminalFd = 5
)

// TerminalMaster and TerminalReady are the two messages on the terminal
// socket: launcher -> host (with the master fd), host -> launcher.
const (
	TerminalMaster = "pty"
	TerminalReady  = "ok\n"
)

// The start line lets the apps be exec'd: "start" alone, or "start
// resolv" when the networks gave DNS settings, so that each app gets the
// generated resolv.conf (stage2.App.NetResolvConf). A config stream that
// ends without it means the pod must not start.
const (
	StartLine       = "start"
	StartWithResolv = "start resolv"
)

// Config is what the setup helper sends the supervisor.
type Config struct {
	UUID     string
	PodDir   string
	Hostname string
	// Loopback: bring lo up in the pod's own network namespace.
	Loopback bool
	Debug    bool
	// Epoch is the pod's host-side process's start (Unix nanoseconds),
	// the origin of the debug timestamps.
	Epoch int64
	// GracePeriod is how long apps get between SIGTERM and SIGKILL when
	// the pod stops.
	GracePeriod time.Duration
	// HandlerTimeout is how long an event handler may run before it is
	// killed (its launcher's session gets SIGKILL).
	HandlerTimeout time.Duration
	// ReadyLink is the supervisor-status symlink, made ("ready") once
	// every app runs.
	ReadyLink string
	// ListenFds is the number of sockets of socket activation the
	// supervisor has from ListenFd on, for the apps with Listen.
	ListenFds int
	Apps      []App
}

// App is one app to start.
type App struct {
	Name string
	// Launch is the app's stage2.App as JSON (one line), passed on to its
	// launcher as is.
	Launch []byte
	// NewSession starts the launcher in a session of its own.
	NewSession bool
	// UnifiedCgroup is the app's cgroup v2 directory: the launcher is
	// started right in it (CLONE_INTO_CGROUP) where the kernel allows,
	// else it joins it itself.
	UnifiedCgroup string
	// SupportsNotify: the pod is ready only once this app sent READY=1
	// to its NOTIFY_SOCKET (NotifySocket).
	SupportsNotify bool
	// Listen: the app gets the sockets of socket activation (its
	// launcher, as descriptors 3.., with LaunchListenFdsEnv).
	Listen bool
	// StatusFile, StartedFile: absolute paths of the app's exit status
	// file and start marker.
	StatusFile  string
	StartedFile string
	// PreStart and PostStop are the app's event handlers, each run by a
	// launcher of its own like the app (nil: none).
	PreStart, PostStop *Handler
	// OOMEvents are the app's memory cgroup event files (memory.events,
	// memory.oom_control): an app killed by SIGKILL while their oom_kill
	// counter is above zero ran out of memory.
	OOMEvents []string
}

// NotifyEvent starts the event line (EventFd) of a notification to relay
// to systemd: NotifyEvent, the datagram's assignments (joined by
// newlines) as a Go quoted string, a newline.
const NotifyEvent = "notify "

// Relayed reports whether an app's notification assignment (a line
// "KEY=VALUE" it sent to its NOTIFY_SOCKET) is relayed to systemd: all
// but those that would let the app speak for rkt or that need file
// descriptors, which the relay does not carry: MAINPID= (the unit's
// main pid is rkt's), NOTIFYACCESS=, the file descriptor store (FDSTORE=,
// FDSTOREREMOVE=, FDNAME=, FDPOLL=) and BARRIER=. READY=1 is rkt's own
// once every app is ready (the supervisor counts it, not relays it).
func Relayed(assignment string) bool {
	k, _, ok := strings.Cut(assignment, "=")
	if !ok {
		return false
	}
	switch k {
	case "MAINPID", "NOTIFYACCESS", "FDSTORE", "FDSTOREREMOVE", "FDNAME", "FDPOLL", "BARRIER", "READY":
		return false
	}
	return k != ""
}

// Handler is an app's event handler: its launcher's configuration, the
// app's with the handler's command.
type Handler struct {
	// Launch is the handler's stage2.App as JSON (one line).
	Launch []byte
	// Exec is its command line, for messages.
	Exec string
}

// NotifySocket is the abstract socket an app that supports systemd's
// notify protocol gets as NOTIFY_SOCKET.
func NotifySocket(uuid, app string) string {
	return "@rkt-" + uuid + "-" + app + "-notify"
}

// The encoding: one field per line, "key value" with the value running to
// the end of the line; "app NAME" starts an app's fields, "end" ends the
// configuration. Values cannot hold newlines (Encode refuses them).
const configEnd = "end"

// Encode writes cfg in the line format Decode reads.
func (cfg *Config) Encode() ([]byte, error) {
	var b strings.Builder
	var bad error
	put := func(k, v string) {
		if strings.ContainsAny(v, "\n\x00") {
			bad = errors.New("supervisor configuration: " + k + " " + strconv.Quote(v) + " holds a newline or NUL")
		}
		b.WriteString(k)
		b.WriteByte(' ')
		b.WriteString(v)
		b.WriteByte('\n')
	}
	flag := func(k string, v bool) {
		if v {
			put(k, "1")
		}
	}
	put("uuid", cfg.UUID)
	put("podDir", cfg.PodDir)
	put("hostname", cfg.Hostname)
	flag("lo", cfg.Loopback)
	flag("debug", cfg.Debug)
	put("epoch", strconv.FormatInt(cfg.Epoch, 10))
	put("grace", strconv.FormatInt(int64(cfg.GracePeriod), 10))
	if cfg.HandlerTimeout != 0 {
		put("handlerTimeout", strconv.FormatInt(int64(cfg.HandlerTimeout), 10))
	}
	put("readyLink", cfg.ReadyLink)
	if cfg.ListenFds > 0 {
		put("listenFds", strconv.Itoa(cfg.ListenFds))
	}
	for _, a := range cfg.Apps {
		put("app", a.Name)
		flag("newSession", a.NewSession)
		if a.UnifiedCgroup != "" {
			put("unified", a.UnifiedCgroup)
		}
		flag("notify", a.SupportsNotify)
		flag("listen", a.Listen)
		put("status", a.StatusFile)
		put("started", a.StartedFile)
		for _, f := range a.OOMEvents {
			put("oomEvents", f)
		}
		for _, h := range []struct {
			key string
			h   *Handler
		}{{"preStart", a.PreStart}, {"postStop", a.PostStop}} {
			if h.h != nil {
				put(h.key+"Exec", h.h.Exec)
				put(h.key, string(h.h.Launch))
			}
		}
		put("launch", string(a.Launch))
	}
	b.WriteString(configEnd + "\n")
	if bad != nil {
		return nil, bad
	}
	return []byte(b.String()), nil
}

// Decode reads a configuration written by Encode, up to its "end" line.
func Decode(r *bufio.Reader) (*Config, error) {
	cfg := &Config{}
	var app *App
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				return nil, errors.New("the configuration ended early (the setup failed?)")
			}
			return nil, err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == configEnd {
			break
		}
		k, v, _ := strings.Cut(line, " ")
		if err := cfg.set(&app, k, v); err != nil {
			return nil, err
		}
	}
	if cfg.UUID == "" || cfg.PodDir == "" {
		return nil, errors.New("the configuration lacks the pod's UUID or directory")
	}
	return cfg, nil
}

func (cfg *Config) set(app **App, k, v string) error {
	num := func() (int64, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, errors.New("configuration: " + k + ": bad number " + strconv.Quote(v))
		}
		return n, nil
	}
	var err error
	switch k {
	case "uuid":
		cfg.UUID = v
	case "podDir":
		cfg.PodDir = v
	case "hostname":
		cfg.Hostname = v
	case "lo":
		cfg.Loopback = v == "1"
	case "debug":
		cfg.Debug = v == "1"
	case "epoch":
		cfg.Epoch, err = num()
	case "grace":
		var n int64
		n, err = num()
		cfg.GracePeriod = time.Duration(n)
	case "handlerTimeout":
		var n int64
		n, err = num()
		cfg.HandlerTimeout = time.Duration(n)
	case "readyLink":
		cfg.ReadyLink = v
	case "listenFds":
		var n int64
		n, err = num()
		cfg.ListenFds = int(n)
	case "app":
		cfg.Apps = append(cfg.Apps, App{Name: v})
		*app = &cfg.Apps[len(cfg.Apps)-1]
	default:
		a := *app
		if a == nil {
			return errors.New("configuration: unknown key " + strconv.Quote(k))
		}
		switch k {
		case "newSession":
			a.NewSession = v == "1"
		case "unified":
			a.UnifiedCgroup = v
		case "notify":
			a.SupportsNotify = v == "1"
		case "listen":
			a.Listen = v == "1"
		case "status":
			a.StatusFile = v
		case "started":
			a.StartedFile = v
		case "oomEvents":
			a.OOMEvents = append(a.OOMEvents, v)
		case "launch":
			a.Launch = []byte(v)
		case "preStartExec", "preStart":
			if a.PreStart == nil {
				a.PreStart = &Handler{}
			}
			a.PreStart.set(k == "preStart", v)
		case "postStopExec", "postStop":
			if a.PostStop == nil {
				a.PostStop = &Handler{}
			}
			a.PostStop.set(k == "postStop", v)
		default:
			return errors.New("configuration: unknown app key " + strconv.Quote(k))
		}
	}
	return err
}

// set sets the handler's launch configuration (launch) or its command.
func (h *Handler) set(launch bool, v string) {
	if launch {
		h.Launch = []byte(v)
	} else {
		h.Exec = v
	}
}
