// Command stubstage1 is a minimal stage1 for testing stage0 alone: it
// speaks the entrypoint interface of docs/stage1-abi.md without isolating
// anything. Behaviour is steered by pod annotations:
//
//	rkt.dev/stub-exit=N    exit with N (and write it as every app's status)
//	rkt.dev/stub-sleep=D   sleep for D (a Go duration) before exiting
//	rkt.dev/stub-gc-fail=M the gc entrypoint fails with message M (a
//	                       teardown that cannot finish)
//
// Dispatch is on the basename of argv[0]: init (run), stop, gc, enter. The
// names of the contract (files, environment, exit code) are pkg/stage1abi's,
// and the pid file is recorded and checked with pkg/proc, as the real
// stage1s do.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rkt/rkt/pkg/exitstatus"
	"github.com/rkt/rkt/pkg/proc"
	"github.com/rkt/rkt/pkg/stage1abi"
)

func main() {
	var err error
	code := 0
	switch filepath.Base(os.Args[0]) {
	case "init":
		code, err = run()
	case "stop":
		err = stop()
	case "gc":
		err = os.WriteFile("stub-gc-ran", []byte(strings.Join(os.Args, " ")), 0o644)
		if msg := annotation("rkt.dev/stub-gc-fail"); err == nil && msg != "" {
			err = fmt.Errorf("gc: %s", msg)
		}
	case "enter":
		fmt.Println("stub-enter:", strings.Join(os.Args[1:], " "))
	default:
		err = fmt.Errorf("unknown entrypoint %q", os.Args[0])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stubstage1:", err)
		os.Exit(stage1abi.ExitFailure)
	}
	os.Exit(code)
}

type podManifest struct {
	Apps []struct {
		Name string `json:"name"`
	} `json:"apps"`
	Annotations []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"annotations"`
}

// annotation returns the pod annotation name's value ("" if unset or the
// manifest is unreadable).
func annotation(name string) string {
	data, err := os.ReadFile(stage1abi.PodManifestFile)
	if err != nil {
		return ""
	}
	var pm podManifest
	if json.Unmarshal(data, &pm) != nil {
		return ""
	}
	for _, a := range pm.Annotations {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

func run() (int, error) {
	fd, err := strconv.Atoi(os.Getenv(stage1abi.LockFdEnv))
	if err != nil {
		return 0, fmt.Errorf("%s not set: %v", stage1abi.LockFdEnv, err)
	}
	// The lock must be held by us through the inherited descriptor.
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("%s %d is not open: %v", stage1abi.LockFdEnv, fd, err)
	}
	data, err := os.ReadFile(stage1abi.PodManifestFile)
	if err != nil {
		return 0, err
	}
	var pm podManifest
	if err := json.Unmarshal(data, &pm); err != nil {
		return 0, err
	}
	exit, sleep := 0, time.Duration(0)
	for _, a := range pm.Annotations {
		switch a.Name {
		case "rkt.dev/stub-exit":
			exit, _ = strconv.Atoi(a.Value)
		case "rkt.dev/stub-sleep":
			sleep, _ = time.ParseDuration(a.Value)
		}
	}
	if err := proc.Record(stage1abi.PidFile, os.Getpid()); err != nil {
		return 0, err
	}
	fmt.Printf("stub-stage1: args=%s\n", strings.Join(os.Args[1:], " "))
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-time.After(sleep):
	case s := <-term:
		exit = 128 + int(s.(syscall.Signal))
	}
	if err := os.MkdirAll(stage1abi.StatusDir, 0o755); err != nil {
		return 0, err
	}
	for _, a := range pm.Apps {
		if err := exitstatus.Write(stage1abi.AppStatus(a.Name), exit, ""); err != nil {
			return 0, err
		}
	}
	return exit, nil
}

func stop() error {
	force := len(os.Args) > 1 && os.Args[1] == "--force"
	p, err := proc.Load(stage1abi.PidFile)
	if err != nil {
		return err
	}
	h, err := p.Open()
	if err != nil {
		return err
	}
	defer h.Close()
	sig := syscall.SIGTERM
	if force {
		sig = syscall.SIGKILL
	}
	return h.Signal(sig)
}
