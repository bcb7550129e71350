// Command init is the default flavor's small binary, /init in the stage1
// image: the run entrypoint, which stays for the pod's life as its
// host-side process (stage1/host), and, run again by it as
// rkt-supervisor, the pod's process 1 (stage1/supervisor). Both stay
// resident, so this binary holds nothing else: see the protocol in
// stage1/default.
package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/rkt/rkt/stage1/host"
	"github.com/rkt/rkt/stage1/supervisor"
)

func main() {
	ctx := context.Background()
	switch filepath.Base(os.Args[0]) {
	case supervisor.ArgvName:
		os.Exit(supervisor.Main(ctx, os.Args[1:]))
	default:
		// The run entrypoint, whatever stage0 named it.
		os.Exit(host.Main(ctx, os.Args[1:]))
	}
}
