package stage0

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rkt/rkt/pkg/mds"
	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// MDSMode is rkt run's --mds-register.
type MDSMode string

// The values of --mds-register.
const (
	// MDSAuto registers the pod when the metadata service's socket
	// exists, and runs it unregistered otherwise.
	MDSAuto MDSMode = "auto"
	// MDSRequired fails when the pod cannot be registered.
	MDSRequired MDSMode = "true"
	// MDSOff never registers.
	MDSOff MDSMode = "false"
)

// mdsTimeout bounds a registration.
const mdsTimeout = 5 * time.Second

// registerMDS registers the pod (prepare/ or prepared/, about to move to
// run/) with the metadata service, as
// mode says. Without the service's socket and without MDSRequired it
// costs one stat.
func registerMDS(p *pod.Pod, mode MDSMode, warnf func(string, ...any)) error {
	if mode == MDSOff {
		return nil
	}
	socket := mds.SocketPath()
	if mode != MDSRequired {
		if _, err := os.Stat(socket); err != nil {
			return nil
		}
	}
	dir, err := filepath.Abs(p.Path())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), mdsTimeout)
	defer cancel()
	_, err = mds.RegisterPod(ctx, socket, dir)
	switch {
	case err == nil:
		return nil
	case mode != MDSRequired:
		// The socket is there but nobody answers (a service that died):
		// run as without one.
		if warnf != nil {
			warnf("pod %s not registered with the metadata service: %v", p.UUID, err)
		}
		return nil
	case errors.Is(err, mds.ErrNotRunning):
		return fmt.Errorf("--mds-register: %w (start it: systemctl start rkt-metadata.socket, or rkt metadata-service; or run without --mds-register)", err)
	}
	return fmt.Errorf("--mds-register: %w", err)
}

// unregisterMDS tells the metadata service a pod registered with it is
// gone; pods that were not registered cost one stat.
func unregisterMDS(ctx context.Context, p *pod.Pod) {
	if _, err := os.Stat(filepath.Join(p.Path(), stage1abi.MDSTokenFile)); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, mdsTimeout)
	defer cancel()
	// A service that is gone forgets the pod anyway; one that cannot be
	// reached now rebuilds only from running pods.
	_ = mds.UnregisterPod(ctx, mds.SocketPath(), p.UUID)
}
