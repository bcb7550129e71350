// Command inspect is the "swiss-army" test app that the functional tests run
// inside pods. It is a static binary (CGO_ENABLED=0) with no dependencies on
// the image it runs in.
//
// Every flag does one thing; flags combine and run in the fixed order below,
// then the program exits (with --exit-code, or 0). Output lines are
// "key: value" so tests can match them; on failure it prints
// "inspect: ..." to stderr and exits 1.
//
//	--print-msg=S            print S verbatim
//	--print-env=NAME         "NAME=value", or "NAME is unset" (repeatable)
//	--print-env-all          every variable, sorted, "NAME=value"
//	--print-user             "uid: N", "gid: N", "euid: N", "egid: N"
//	--print-groups           "groups: G1 G2 ..." (supplementary, sorted)
//	--print-caps-pid=N       "CapBnd: hex", CapEff, CapPrm, CapInh, CapAmb of /proc/N (0 = self)
//	--print-memorylimit      "memory limit: BYTES|max" (cgroup v1 or v2)
//	--print-cpuquota         "cpu quota: QUOTA/PERIOD" (QUOTA is "max" when unlimited)
//	--print-cpushares        "cpu shares: N" (v1) or "cpu weight: N" (v2)
//	--print-pidslimit        "pids limit: N|max"
//	--print-hostname         "hostname: NAME"
//	--print-cwd              "cwd: DIR"
//	--print-mounts           /proc/self/mountinfo, verbatim
//	--print-netns, --print-ipcns, --print-pidns, --print-mntns, --print-utsns
//	                         "netns: net:[4026531992]" (readlink of /proc/self/ns/*)
//	--print-no-new-privs     "no_new_privs: 0|1"
//	--print-seccomp          "Seccomp: N" (from /proc/self/status)
//	--print-oom-score-adj    "oom_score_adj: N"
//	--print-pid, --print-ppid "pid: N", "ppid: N"
//	--write-file=PATH --content=S
//	                         write S to PATH (0644), then "wrote: PATH"
//	--read-file=PATH         "<<<CONTENTS>>>" (after --write-file, so both can combine)
//	--escape-mntns=PATH      join the mount namespace /proc/self/ns/mnt names (nsenter's
//	                         trick to leave a chroot), then write PATH: "escape mntns:
//	                         joined|ERROR", "escape write: ok|ERROR" (after --read-file)
//	--tiocsti=S              push S into the input of the terminal on stdin: "tiocsti: ok|ERROR"
//	--stat-file=PATH         "file type: regular", "file mode: 0644", "file uid: N",
//	                         "file gid: N", "file size: N" (lstat: symlinks are not followed)
//	--mknod=PATH,b|c,MAJ,MIN mknod a device node (mode 0666), "mknod PATH: ok|ERRNO" (repeatable)
//	--open-file=PATH,r|w|rw  open and close at once, "open PATH: ok|ERRNO" (repeatable; after --mknod)
//	--print-fds              "fd: N TARGET" per open descriptor (readlink of /proc/self/fd/N)
//	--try-io-uring           "io_uring_setup: ok|ERRNO" (a one-entry ring, closed at once)
//	--check-tty              "stdin tty: true|false", same for stdout and stderr
//	--print-tty              "tty: PATH" (of stdin), "tty dev: N" (its st_dev), and
//	                         "char fd N: dev D rdev R" per open character device
//	--print-winsize          "winsize: ROWS COLS" of stdin
//	--wait-winch             print "waiting for SIGWINCH", wait for it (10 s), then as --print-winsize
//	--read-stdin             read one line from stdin, "stdin: LINE"
//	--print-iface-count      "interfaces: N" (loopback included)
//	--print-ipv4             "ipv4: IFACE ADDR/PREFIX" per address of non-loopback interfaces
//	--get-http=URL           "http status: N", "http body: BODY" (10 s timeout)
//	--serve-http=ADDR        serve --serve-http-body (default "rkt inspect") on ADDR,
//	                         print "serving: ADDR" once listening; serve until killed
//	                         unless --sleep is given (then exit after the sleep)
//	--serve-fd=N             accept one connection on the listening socket N (socket
//	                         activation's fd 3), write "served pid=P LISTEN_PID=V
//	                         LISTEN_FDS=V LISTEN_FDNAMES=V" to it, close it, then
//	                         "served: fd N"; after --serve-http
//	--sd-notify=STATE        send STATE (e.g. READY=1) to $NOTIFY_SOCKET ("@" = abstract),
//	                         then "sd-notify: STATE"; sent after --serve-http listens;
//	                         a literal \n in STATE is sent as a newline
//	--sleep=DURATION         sleep (Go duration, or plain seconds)
//	--silent-sigterm         on SIGTERM exit 0 without a word; otherwise SIGTERM prints
//	                         "inspect: got SIGTERM" and exits 143 (SIGINT: 130)
//	--ignore-sigterm         ignore SIGTERM (only SIGKILL ends it)
//	--exit-code=N            exit with N at the end
//
// Signal handlers are installed first, so they work when inspect is a pid
// namespace's pid 1 (where default signal actions do not apply).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options holds every flag; the zero value does nothing.
type options struct {
	printMsg      string
	printEnv      listFlag
	printEnvAll   bool
	printUser     bool
	printGroups   bool
	printCapsPID  int
	printMemLimit bool
	printCPUQuota bool
	printCPUShare bool
	printPids     bool
	printHostname bool
	printCwd      bool
	printMounts   bool
	printNS       map[string]*bool
	printNNP      bool
	printSeccomp  bool
	printOOMAdj   bool
	printPID      bool
	printPPID     bool
	readFile      string
	writeFile     string
	content       string
	statFile      string
	mknod         listFlag
	openFile      listFlag
	printFds      bool
	tryIOURing    bool
	checkTTY      bool
	printTTY      bool
	printWinsize  bool
	waitWinch     bool
	readStdin     bool
	ifaceCount    bool
	printIPv4     bool
	getHTTP       string
	serveHTTP     string
	serveBody     string
	sdNotify      string
	serveFd       int
	ignoreTerm    bool
	sleep         sleepFlag
	silentTerm    bool
	exitCode      int
	escapeMntns   string
	tiocsti       string
}

// nsNames are the namespaces with a --print-<name>ns flag, in output order.
var nsNames = []string{"net", "ipc", "pid", "mnt", "uts"}

// listFlag collects the values of a repeated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// sleepFlag accepts a Go duration ("1.5s") or a plain number of seconds ("3").
type sleepFlag time.Duration

func (s *sleepFlag) String() string { return time.Duration(*s).String() }

func (s *sleepFlag) Set(v string) error {
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		*s = sleepFlag(time.Duration(n * float64(time.Second)))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want a duration like 2s or a number of seconds: %w", err)
	}
	*s = sleepFlag(d)
	return nil
}

func parseFlags(args []string, errOut io.Writer) (*options, error) {
	o := &options{printNS: map[string]*bool{}}
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&o.printMsg, "print-msg", "", "print this message")
	fs.Var(&o.printEnv, "print-env", "print this environment variable (repeatable)")
	fs.BoolVar(&o.printEnvAll, "print-env-all", false, "print the whole environment")
	fs.BoolVar(&o.printUser, "print-user", false, "print uid, gid, euid, egid")
	fs.BoolVar(&o.printGroups, "print-groups", false, "print supplementary groups")
	fs.IntVar(&o.printCapsPID, "print-caps-pid", -1, "print capability sets of this pid (0 = self)")
	fs.BoolVar(&o.printMemLimit, "print-memorylimit", false, "print the cgroup memory limit")
	fs.BoolVar(&o.printCPUQuota, "print-cpuquota", false, "print the cgroup CFS quota")
	fs.BoolVar(&o.printCPUShare, "print-cpushares", false, "print cgroup cpu shares (v1) or weight (v2)")
	fs.BoolVar(&o.printPids, "print-pidslimit", false, "print the cgroup pids limit")
	fs.BoolVar(&o.printHostname, "print-hostname", false, "print the hostname")
	fs.BoolVar(&o.printCwd, "print-cwd", false, "print the working directory")
	fs.BoolVar(&o.printMounts, "print-mounts", false, "print /proc/self/mountinfo")
	for _, ns := range nsNames {
		o.printNS[ns] = fs.Bool("print-"+ns+"ns", false, "print the "+ns+" namespace")
	}
	fs.BoolVar(&o.printNNP, "print-no-new-privs", false, "print the no_new_privs bit")
	fs.BoolVar(&o.printSeccomp, "print-seccomp", false, "print the seccomp mode")
	fs.BoolVar(&o.printOOMAdj, "print-oom-score-adj", false, "print oom_score_adj")
	fs.BoolVar(&o.printPID, "print-pid", false, "print the pid")
	fs.BoolVar(&o.printPPID, "print-ppid", false, "print the parent pid")
	fs.StringVar(&o.readFile, "read-file", "", "print the contents of this file")
	fs.StringVar(&o.writeFile, "write-file", "", "write --content to this file")
	fs.StringVar(&o.content, "content", "", "content for --write-file")
	fs.StringVar(&o.tiocsti, "tiocsti", "", "push this into the input of the terminal on stdin (TIOCSTI)")
	fs.StringVar(&o.escapeMntns, "escape-mntns", "", "join the mount namespace of /proc/self/ns/mnt, then write this file")
	fs.StringVar(&o.statFile, "stat-file", "", "print type, mode, owner and size of this file")
	fs.Var(&o.mknod, "mknod", "make this device node: PATH,b|c,MAJOR,MINOR (repeatable)")
	fs.Var(&o.openFile, "open-file", "open this file: PATH,r|w|rw (repeatable)")
	fs.BoolVar(&o.printFds, "print-fds", false, "print the open file descriptors")
	fs.BoolVar(&o.tryIOURing, "try-io-uring", false, "call io_uring_setup and print the outcome")
	fs.BoolVar(&o.checkTTY, "check-tty", false, "print whether stdin/stdout/stderr are terminals")
	fs.BoolVar(&o.printTTY, "print-tty", false, "print stdin's terminal and the open character devices")
	fs.BoolVar(&o.printWinsize, "print-winsize", false, "print stdin's window size")
	fs.BoolVar(&o.waitWinch, "wait-winch", false, "wait for SIGWINCH, then print the window size")
	fs.BoolVar(&o.readStdin, "read-stdin", false, "read one line from stdin and print it")
	fs.BoolVar(&o.ifaceCount, "print-iface-count", false, "print the number of network interfaces")
	fs.BoolVar(&o.printIPv4, "print-ipv4", false, "print IPv4 addresses of non-loopback interfaces")
	fs.StringVar(&o.getHTTP, "get-http", "", "GET this URL and print the body")
	fs.StringVar(&o.serveHTTP, "serve-http", "", "serve HTTP on this address")
	fs.StringVar(&o.serveBody, "serve-http-body", "rkt inspect", "body served by --serve-http")
	fs.StringVar(&o.sdNotify, "sd-notify", "", "send this state to $NOTIFY_SOCKET")
	fs.IntVar(&o.serveFd, "serve-fd", -1, "accept one connection on this listening descriptor and answer")
	fs.BoolVar(&o.ignoreTerm, "ignore-sigterm", false, "ignore SIGTERM")
	fs.Var(&o.sleep, "sleep", "sleep this long (duration or seconds)")
	fs.BoolVar(&o.silentTerm, "silent-sigterm", false, "exit 0 quietly on SIGTERM")
	fs.IntVar(&o.exitCode, "exit-code", 0, "exit with this code")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q: every option is a --flag", fs.Args())
	}
	if o.content != "" && o.writeFile == "" {
		return nil, fmt.Errorf("--content needs --write-file=PATH")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "inspect: %v\n", err)
		os.Exit(2)
	}
	handleSignals(o.silentTerm)
	if o.ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	code, err := run(context.Background(), o, os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "inspect: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

// handleSignals makes SIGTERM and SIGINT end the program with a message
// (or quietly with --silent-sigterm). Installed handlers also work for pid 1.
func handleSignals(silent bool) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-ch
		if sig == syscall.SIGTERM {
			if silent {
				os.Exit(0)
			}
			fmt.Println("inspect: got SIGTERM")
			os.Exit(143)
		}
		fmt.Println("inspect: got SIGINT")
		os.Exit(130)
	}()
}

// step is one action; it returns an error that ends the program.
type step struct {
	on bool
	do func() error
}

// run performs the requested actions in order and returns the exit code.
func run(ctx context.Context, o *options, stdin io.Reader, out io.Writer) (int, error) {
	p := &printer{w: out}
	var srv *server
	steps := []step{
		{o.printMsg != "", func() error { return p.raw(o.printMsg + "\n") }},
		{len(o.printEnv) > 0, func() error { return p.env(o.printEnv) }},
		{o.printEnvAll, p.envAll},
		{o.printUser, p.user},
		{o.printGroups, p.groups},
		{o.printCapsPID >= 0, func() error { return p.caps(o.printCapsPID) }},
		{o.printMemLimit, p.memoryLimit},
		{o.printCPUQuota, p.cpuQuota},
		{o.printCPUShare, p.cpuShares},
		{o.printPids, p.pidsLimit},
		{o.printHostname, p.hostname},
		{o.printCwd, p.cwd},
		{o.printMounts, p.mounts},
	}
	for _, ns := range nsNames {
		steps = append(steps, step{*o.printNS[ns], func() error { return p.namespace(ns) }})
	}
	steps = append(steps, []step{
		{o.printNNP, p.noNewPrivs},
		{o.printSeccomp, func() error { return p.statusLine("self", "Seccomp") }},
		{o.printOOMAdj, p.oomScoreAdj},
		{o.printPID, func() error { return p.kv("pid", strconv.Itoa(os.Getpid())) }},
		{o.printPPID, func() error { return p.kv("ppid", strconv.Itoa(os.Getppid())) }},
		{o.writeFile != "", func() error { return p.writeFile(o.writeFile, o.content) }},
		{o.readFile != "", func() error { return p.readFile(o.readFile) }},
		{o.escapeMntns != "", func() error { return p.escapeMntns(o.escapeMntns) }},
		{o.tiocsti != "", func() error { return p.tiocsti(o.tiocsti) }},
		{o.statFile != "", func() error { return p.statFile(o.statFile) }},
		{len(o.mknod) > 0, func() error {
			for _, m := range o.mknod {
				if err := p.mknod(m); err != nil {
					return err
				}
			}
			return nil
		}},
		{len(o.openFile) > 0, func() error {
			for _, f := range o.openFile {
				if err := p.openFile(f); err != nil {
					return err
				}
			}
			return nil
		}},
		{o.printFds, p.fds},
		{o.tryIOURing, p.tryIOURing},
		{o.checkTTY, p.checkTTY},
		{o.printTTY, p.printTTY},
		{o.printWinsize, p.printWinsize},
		{o.waitWinch, p.waitWinch},
		{o.readStdin, func() error { return p.readStdin(stdin) }},
		{o.ifaceCount, p.ifaceCount},
		{o.printIPv4, p.ipv4},
		{o.getHTTP != "", func() error { return p.getHTTP(ctx, o.getHTTP) }},
		{o.serveHTTP != "", func() (err error) {
			srv, err = p.serveHTTP(o.serveHTTP, o.serveBody)
			return err
		}},
		{o.serveFd >= 0, func() error { return p.serveFd(o.serveFd) }},
		{o.sdNotify != "", func() error { return p.sdNotify(o.sdNotify) }},
		{o.sleep > 0, func() error {
			time.Sleep(time.Duration(o.sleep))
			return nil
		}},
	}...)
	for _, s := range steps {
		if !s.on {
			continue
		}
		if err := s.do(); err != nil {
			return 1, err
		}
		if p.err != nil {
			return 1, fmt.Errorf("write output: %w", p.err)
		}
	}
	if srv != nil && o.sleep == 0 {
		// Serve until a signal ends the process, or the server fails.
		if err := srv.wait(); err != nil {
			return 1, err
		}
	}
	return o.exitCode, nil
}
