package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rkt/rkt/stage1/podcfg"
)

// readyTimeout bounds the wait for an idle pod to be ready.
const readyTimeout = 30 * time.Second

// pod is an idle pod the benchmark started (busybox sleep 3600).
type pod struct {
	n    int
	d    *rktDir
	cmd  *exec.Cmd
	uuid string
	// done is closed once the rkt process (the pod's outer process) has
	// been waited for; waitErr is then its result.
	done    chan struct{}
	waitErr error
	// ready is the time from the fork of rkt to stage1's READY=1, ms.
	ready float64
}

// startIdlePod runs `rkt run ... --exec /bin/sleep -- 3600` in the
// background and waits for the READY=1 stage1 sends to NOTIFY_SOCKET
// once the app runs. The pod is recorded for cleanup even on failure.
func (b *bench) startIdlePod(ctx context.Context, d *rktDir, n int) (*pod, error) {
	dir := filepath.Join(b.cfg.work, "pods")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, fmt.Sprintf("notify-%d.sock", n))
	os.Remove(sock)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("pod %d: make a notify socket: %w", n, err)
	}
	defer os.Remove(sock)
	defer conn.Close()
	uuidFile := filepath.Join(dir, fmt.Sprintf("pod-%d.uuid", n))
	logName := filepath.Join(dir, fmt.Sprintf("pod-%d.log", n))
	log, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	argv := b.rktCmd(d, "run", "--net=none", "--uuid-file-save="+uuidFile, imageName, "--exec", "/bin/sleep", "--", "3600")
	// Not bound to ctx: the pod lives until stopPods.
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	c.Stderr = log
	start := time.Now()
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("pod %d: start rkt: %w", n, err)
	}
	p := &pod{n: n, d: d, cmd: c, done: make(chan struct{})}
	b.mu.Lock()
	b.pods = append(b.pods, p)
	b.mu.Unlock()
	go func() {
		p.waitErr = c.Wait()
		close(p.done)
	}()
	readyC := make(chan error, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				readyC <- err
				return
			}
			if strings.Contains(string(buf[:k]), "READY=1") {
				readyC <- nil
				return
			}
		}
	}()
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case err := <-readyC:
		if err != nil {
			return p, fmt.Errorf("pod %d: read the notify socket: %w", n, err)
		}
	case <-p.done:
		msg, _ := os.ReadFile(logName)
		return p, fmt.Errorf("pod %d: rkt exited before the pod was ready (%v): %s", n, p.waitErr, tail(string(msg)))
	case <-timer.C:
		return p, fmt.Errorf("pod %d: not ready after %v (no READY=1 on NOTIFY_SOCKET)", n, readyTimeout)
	case <-ctx.Done():
		return p, ctx.Err()
	}
	p.ready = float64(time.Since(start).Microseconds()) / 1000
	data, err := os.ReadFile(uuidFile)
	if err != nil {
		return p, fmt.Errorf("pod %d: read the UUID rkt saved: %w", n, err)
	}
	p.uuid = strings.TrimSpace(string(data))
	return p, nil
}

// stopPods sends SIGTERM to the rkt process of each pod still running,
// waits up to timeout for them all, then kills the rest.
func stopPods(ctx context.Context, pods []*pod, timeout time.Duration) {
	for _, p := range pods {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, p := range pods {
		select {
		case <-p.done:
			continue
		case <-deadline.C:
		case <-ctx.Done():
		}
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
	}
}

// forget drops stopped pods from the cleanup list.
func (b *bench) forget(ps ...*pod) {
	drop := map[*pod]bool{}
	for _, p := range ps {
		drop[p] = true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := b.pods[:0]
	for _, p := range b.pods {
		select {
		case <-p.done:
			if drop[p] {
				continue
			}
		default:
		}
		kept = append(kept, p)
	}
	b.pods = kept
}

// podMem is the memory of a running pod.
type podMem struct {
	outer, sup mem // rkt's own processes
	apps       mem
	supPid     int
	appPids    []int
	cgroup     int64 // bytes; cgroupOK says whether it was found
	cgroupOK   bool
}

// measure finds the processes of p (its rkt process, which is stage1's
// run entrypoint after the exec; the supervisor, whose PID stage1 writes
// to the pod directory; the apps, the supervisor's children) and reads
// their memory and the pod's cgroup memory use.
func (p *pod) measure() (podMem, error) {
	var pm podMem
	outer := p.cmd.Process.Pid
	podDir := filepath.Join(p.d.dir, "pods", "run", p.uuid)
	data, err := os.ReadFile(filepath.Join(podDir, podcfg.PidFile))
	if err != nil {
		return pm, fmt.Errorf("pod %s: read the supervisor's PID: %w", p.uuid, err)
	}
	if pm.supPid, err = strconv.Atoi(strings.TrimSpace(string(data))); err != nil {
		return pm, fmt.Errorf("pod %s: bad pid file: %w", p.uuid, err)
	}
	if pp, err := ppidOf(pm.supPid); err != nil || pp != outer {
		return pm, fmt.Errorf("pod %s: the supervisor %d is not a child of rkt's process %d (parent %d, %v)", p.uuid, pm.supPid, outer, pp, err)
	}
	if pm.outer, err = readMem(outer); err != nil {
		return pm, err
	}
	if pm.sup, err = readMem(pm.supPid); err != nil {
		return pm, err
	}
	pm.appPids = childrenOf(pm.supPid)
	for _, a := range pm.appPids {
		if m, err := readMem(a); err == nil {
			pm.apps.add(m)
		}
	}
	if data, err := os.ReadFile(filepath.Join(podDir, cgroupsFile)); err == nil {
		pm.cgroup, pm.cgroupOK = cgroupMemory(strings.Fields(string(data)))
	}
	return pm, nil
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// bigMoves lists the meminfo fields that changed most from a to b.
func bigMoves(a, b meminfo) string {
	type move struct {
		k string
		d int64
	}
	var ms []move
	for k, v := range b {
		if d := v - a[k]; (d > 8*1024 || d < -8*1024) && k != "MemFree" {
			ms = append(ms, move{k, d})
		}
	}
	sort.Slice(ms, func(i, j int) bool { return abs(ms[i].d) > abs(ms[j].d) })
	var out []string
	for i, m := range ms {
		if i == 8 {
			break
		}
		out = append(out, fmt.Sprintf("%s %+.0f", m.k, mib(m.d)))
	}
	if len(out) == 0 {
		return "none by more than 8 MiB"
	}
	return strings.Join(out, ", ")
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// idleOverhead starts one idle pod and prints the memory of each of
// rkt's processes. A failure of the pod is printed, not returned.
func (b *bench) idleOverhead(ctx context.Context) error {
	b.printf("## Overhead of one idle pod\n\n")
	d := b.rkts[0]
	p, err := b.startIdlePod(ctx, d, 0)
	if err == nil {
		err = sleepCtx(ctx, b.cfg.settle)
	}
	var pm podMem
	if err == nil {
		pm, err = p.measure()
	}
	if p != nil {
		stopPods(ctx, []*pod{p}, 10*time.Second)
		b.forget(p)
	}
	if gerr := b.gc(ctx); gerr != nil {
		b.printf("note: rkt gc failed: %v\n", gerr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.printf("**FAILED**: %v\n\n", err)
		return nil
	}
	b.printf("`rkt run --net=none %s --exec /bin/sleep -- 3600`, measured %v after READY=1 (%.1f ms after the fork). MiB, from smaps_rollup:\n\n",
		imageName, b.cfg.settle, p.ready)
	b.printf("| process | pid | RSS | PSS | PSS anon | PSS file | PSS shmem |\n|---|---:|---:|---:|---:|---:|---:|\n")
	row := func(name string, pid any, m mem) {
		b.printf("| %s | %v | %.2f | %.2f | %.2f | %.2f | %.2f |\n", name, pid, mib(m.rss), mib(m.pss), mib(m.anon), mib(m.file), mib(m.shmem))
	}
	row("rkt run → stage1 init (outer, host side)", p.cmd.Process.Pid, pm.outer)
	row("rkt-supervisor (pod pid 1)", pm.supPid, pm.sup)
	total := pm.outer
	total.add(pm.sup)
	row("**rkt's processes**", "", total)
	row("app: busybox sleep (not rkt's)", fmt.Sprint(pm.appPids), pm.apps)
	b.printf("\n")
	if pm.cgroupOK {
		b.printf("The pod's cgroups (memory controller) account %.2f MiB (app and page cache included; memory a\n", float64(pm.cgroup)/(1<<20))
		b.printf("process allocated before it moved into the pod's cgroup stays charged to the caller's on cgroup v1).\n\n")
	}
	b.printf("```\n%s\n", check("rkt's processes RSS", mib(total.rss), mib(targetIdleRSSKiB), "MiB"))
	b.printf("%s\n```\n\n", check("rkt's processes PSS", mib(total.pss), mib(targetIdleRSSKiB), "MiB"))
	return nil
}

// manyPods starts -pods idle pods, -parallel at a time, measures what they
// cost together, stops them and times `rkt gc` of them all.
func (b *bench) manyPods(ctx context.Context) error {
	d := b.rkts[0]
	n := b.cfg.pods
	b.printf("## %d idle pods\n\n", n)
	if err := b.gc(ctx); err != nil {
		b.printf("note: rkt gc failed: %v\n", err)
	}
	before, err := readMeminfo()
	if err != nil {
		return err
	}
	pods := make([]*pod, n)
	errs := make([]error, n)
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < b.cfg.parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				pods[i], errs[i] = b.startIdlePod(ctx, d, i+1)
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	wall := time.Since(start)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ok []*pod
	var ready []float64
	var failures []error
	for i, p := range pods {
		if errs[i] != nil {
			failures = append(failures, errs[i])
			continue
		}
		ok = append(ok, p)
		ready = append(ready, p.ready)
	}
	if err := sleepCtx(ctx, b.cfg.settle); err != nil {
		return err
	}
	var rktMem, appMem mem
	var cg int64
	cgOK := false
	for _, p := range ok {
		pm, err := p.measure()
		if err != nil {
			failures = append(failures, err)
			continue
		}
		rktMem.add(pm.outer)
		rktMem.add(pm.sup)
		appMem.add(pm.apps)
		cg += pm.cgroup
		cgOK = cgOK || pm.cgroupOK
	}
	after, err := readMeminfo()
	if err != nil {
		return err
	}
	var all []*pod
	for _, p := range pods {
		if p != nil {
			all = append(all, p)
		}
	}
	t := time.Now()
	stopPods(ctx, all, 30*time.Second)
	stopDur := time.Since(t)
	b.forget(all...)
	b.noteCgroups(d)
	gcArgv := b.rktCmd(d, "gc", "--grace-period=0s")
	t = time.Now()
	_, gcErr := command(ctx, gcArgv[0], gcArgv[1:]...)
	gcDur := time.Since(t)
	leftPods, _ := filepath.Glob(filepath.Join(d.dir, "pods", "*", "*"))
	sleepCtx(ctx, b.cfg.settle)
	afterGC, err := readMeminfo()
	if err != nil {
		return err
	}

	rs := summarize(ready)
	b.printf("%d pods started, %d at a time, in %.2f s; from fork to READY=1 median %.1f ms, p90 %.1f ms; %d failures.\n\n",
		len(ok), b.cfg.parallel, wall.Seconds(), rs.median, rs.p90, len(failures))
	for i, e := range failures {
		if i == 3 {
			b.printf("- (%d more)\n", len(failures)-3)
			break
		}
		b.printf("- %v\n", e)
	}
	k := float64(max(len(ok), 1))
	b.printf("\n| measure (%d pods) | total MiB | per pod MiB |\n|---|---:|---:|\n", len(ok))
	line := func(name string, kib int64) {
		b.printf("| %s | %.1f | %.2f |\n", name, mib(kib), mib(kib)/k)
	}
	line("PSS of rkt's processes (outer + supervisor)", rktMem.pss)
	line("… of which anon", rktMem.anon)
	line("… of which file (the small stage1 binary, shared)", rktMem.file)
	line("… of which shmem", rktMem.shmem)
	line("RSS of rkt's processes", rktMem.rss)
	line("PSS of the apps (busybox sleep, not rkt's)", appMem.pss)
	if cgOK {
		line("pods' memory cgroups (usage, page cache included)", cg/1024)
	}
	line("MemAvailable drop (meminfo)", before["MemAvailable"]-after["MemAvailable"])
	line("free's \"used\" growth", after.used()-before.used())
	line("Shmem growth (meminfo)", after["Shmem"]-before["Shmem"])
	b.printf("\nStopping them (SIGTERM to every rkt process, wait): %.2f s. ", stopDur.Seconds())
	if gcErr != nil {
		b.printf("`rkt gc --grace-period=0s` **failed** after %.2f s: %v\n", gcDur.Seconds(), gcErr)
	} else {
		b.printf("`rkt gc --grace-period=0s` of %d exited pods: **%.2f s** (%.1f ms per pod).\n", len(all), gcDur.Seconds(), float64(gcDur.Milliseconds())/float64(max(len(all), 1)))
	}
	b.printf("After gc: %d pods and %d cgroup directories left; after gc minus before the pods: MemAvailable %+.1f MiB, Shmem %+.1f MiB.\n\n",
		len(leftPods), b.leftCgroups(), mib(afterGC["MemAvailable"]-before["MemAvailable"]), mib(afterGC["Shmem"]-before["Shmem"]))
	b.printf("meminfo fields that moved most, MiB (with the pods running; after gc), each minus before the pods: %s; %s.\n\n",
		bigMoves(before, after), bigMoves(before, afterGC))
	b.printf("(meminfo figures are host-wide: anything else running on the host moves them; the PSS sums are per process.)\n\n")
	if len(failures) > 0 && len(ok) == 0 {
		return errors.New("no idle pod started: see the failures above")
	}
	return nil
}
