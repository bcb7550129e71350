package stage0

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rkt/rkt/pkg/pod"
)

// preparedOptionsFile, in a prepared pod's directory, keeps the run
// options given to rkt prepare (--net, --hostname, --dns*,
// --hosts-entry, --ipc) for rkt run-prepared. It is stage0's own: stage1
// never reads it. rkt run does not write it (it passes the options
// straight to stage1).
const preparedOptionsFile = "prepared-options.json"

// PreparedOptions are the run options a prepared pod keeps.
type PreparedOptions struct {
	Net         string `json:"net,omitempty"`
	Hostname    string `json:"hostname,omitempty"`
	DNSConfMode string `json:"dnsConfMode,omitempty"`
	IPC         string `json:"ipc,omitempty"`
}

// SavePreparedOptions records o in the prepared pod's directory.
func (pr *Prepared) SavePreparedOptions(o PreparedOptions) error {
	data, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pr.Pod.Path(), preparedOptionsFile), data, 0o640); err != nil {
		return fmt.Errorf("pod %s: record the prepare options: %w", pr.Pod.UUID, err)
	}
	return nil
}

// preparedOptions reads what SavePreparedOptions recorded (nothing for a
// pod prepared by an older rkt).
func preparedOptions(p *pod.Pod) (PreparedOptions, error) {
	var o PreparedOptions
	data, err := os.ReadFile(filepath.Join(p.Path(), preparedOptionsFile))
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return o, err
	}
	if err := json.Unmarshal(data, &o); err != nil {
		return o, fmt.Errorf("pod %s: %s: %w", p.UUID, preparedOptionsFile, err)
	}
	return o, nil
}

// merge fills the options not given to run-prepared (empty) from those
// given to prepare.
func (o *RunOptions) merge(saved PreparedOptions) {
	if o.Net == "" {
		o.Net = saved.Net
	}
	if o.Hostname == "" {
		o.Hostname = saved.Hostname
	}
	if o.DNSConfMode == "" {
		o.DNSConfMode = saved.DNSConfMode
	}
	if o.IPC == "" {
		o.IPC = saved.IPC
	}
}
