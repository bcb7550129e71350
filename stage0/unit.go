package stage0

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/appc/spec/schema/types"

	"github.com/rkt/rkt/pkg/appcjson"
	"github.com/rkt/rkt/pkg/pod"
)

// AnnoRunArgs is the pod annotation in which rkt run and prepare record
// their command line (a JSON object of RunArgs), so that `rkt generate
// systemd UUID` can write a unit that runs the same pod again. It costs
// no file of its own on the start path: the pod manifest is written
// anyway.
const AnnoRunArgs = "rkt.dev/run-args"

// RunArgs is a rkt run command line: the global flags (--dir,
// --insecure-options, ...) and what follows `run`, with relative paths
// made absolute (AbsRunArgs).
type RunArgs struct {
	Global []string `json:"global,omitempty"`
	Run    []string `json:"run"`
}

// recordRunArgs adds args to the pod manifest as AnnoRunArgs.
func recordRunArgs(pm *schema.PodManifest, args *RunArgs) error {
	if args == nil {
		return nil
	}
	data, err := json.Marshal(args)
	if err != nil {
		return err
	}
	pm.Annotations.Set(types.ACIdentifier(AnnoRunArgs), string(data))
	return nil
}

// RunArgsOf returns the command line a pod was made with.
func RunArgsOf(p *pod.Pod) (*RunArgs, error) {
	data, err := Manifest(p)
	if err != nil {
		return nil, err
	}
	var pm schema.PodManifest
	if err := appcjson.Unmarshal(data, &pm); err != nil {
		return nil, fmt.Errorf("pod %s: manifest: %w", p.UUID, err)
	}
	v, ok := pm.Annotations.Get(AnnoRunArgs)
	if !ok {
		return nil, fmt.Errorf("pod %s has no record of its rkt run flags (made by an older rkt, or by another tool): give the image and flags instead of the UUID", p.UUID)
	}
	var ra RunArgs
	if err := json.Unmarshal([]byte(v), &ra); err != nil {
		return nil, fmt.Errorf("pod %s: annotation %s: %w", p.UUID, AnnoRunArgs, err)
	}
	return &ra, nil
}

// pathFlags are the flags of rkt run whose values are paths.
var pathFlags = map[string]bool{
	"set-env-file": true, "pod-manifest": true, "uuid-file-save": true, "signature": true,
	"stage1-path": true, "dir": true, "local-config": true, "system-config": true, "user-config": true,
}

// boolFlags are the flags of rkt run that take no value after a space.
var boolFlags = map[string]bool{
	"interactive": true, "inherit-env": true, "readonly-rootfs": true, "quiet": true, "debug": true,
	"trust-keys-from-https": true, "log-prefix": true,
}

// AbsRunArgs returns rkt run's arguments with every relative path made
// absolute against cwd: the values of path flags, and images given as
// relative paths of files that exist. App arguments (after "--", up to
// "---") are left alone.
func AbsRunArgs(args []string, cwd string) []string {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(cwd, p)
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			out = append(out, a)
			for i++; i < len(args) && args[i] != "---"; i++ {
				out = append(out, args[i])
			}
			if i < len(args) {
				out = append(out, args[i])
			}
		case strings.HasPrefix(a, "-"):
			name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if hasVal {
				if pathFlags[name] {
					a = "--" + name + "=" + abs(val)
				}
				out = append(out, a)
				continue
			}
			out = append(out, a)
			if !boolFlags[name] && i+1 < len(args) {
				i++
				v := args[i]
				if pathFlags[name] {
					v = abs(v)
				}
				out = append(out, v)
			}
		default:
			if !filepath.IsAbs(a) && !strings.Contains(a, "://") {
				if fi, err := os.Stat(filepath.Join(cwd, a)); err == nil && fi.Mode().IsRegular() {
					a = abs(a)
				}
			}
			out = append(out, a)
		}
	}
	return out
}

// UnitOptions describe the unit WriteUnit writes.
type UnitOptions struct {
	Rkt         string // rkt's absolute path
	Description string
	Args        RunArgs
}

// WriteUnit writes a systemd service unit that runs `rkt run` with
// o.Args, set up as dist/systemd/example-pod.service is (Type=notify,
// Delegate=yes, KillMode=mixed, SuccessExitStatus=143, --pull-policy=new unless the arguments
// say otherwise, rkt gc --mark-only after the stop). --interactive is
// dropped (a unit has no terminal).
func WriteUnit(w io.Writer, o UnitOptions) error {
	if !filepath.IsAbs(o.Rkt) {
		return fmt.Errorf("rkt path %q is not absolute", o.Rkt)
	}
	run := []string{}
	hasPull, inArgs := false, false
	for _, a := range o.Args.Run {
		switch {
		case inArgs:
			inArgs = a != "---"
		case a == "--":
			inArgs = true
		case a == "--interactive" || a == "--interactive=true":
			continue
		case a == "--pull-policy" || strings.HasPrefix(a, "--pull-policy="):
			hasPull = true
		}
		run = append(run, a)
	}
	start := append([]string{o.Rkt}, o.Args.Global...)
	start = append(start, "run")
	if !hasPull {
		start = append(start, "--pull-policy=new")
	}
	start = append(start, run...)
	stop := append(append([]string{o.Rkt}, o.Args.Global...), "gc", "--mark-only")
	desc := o.Description
	if desc == "" {
		desc = "rkt pod"
	}
	_, err := fmt.Fprintf(w, `# Written by rkt generate systemd. See docs/systemd.md, "Units".
[Unit]
Description=%s
Documentation=man:rkt-run(1)
Wants=network-online.target
After=network-online.target

[Service]
Type=notify
Slice=machine.slice
Delegate=yes
KillMode=mixed
SuccessExitStatus=143
ExecStart=%s
ExecStopPost=%s
Restart=on-failure

[Install]
WantedBy=multi-user.target
`, unitValue(desc), ExecLine(start), ExecLine(stop))
	return err
}

// unitValue makes s a one-line unit setting value with no specifiers.
func unitValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.ReplaceAll(s, "%", "%%")
}

// ExecLine quotes a command line for ExecStart= and its kind
// (systemd.service(5), "Command lines"): each argument is kept as one,
// with systemd's specifiers (%) and variable expansion ($) turned off.
func ExecLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = QuoteExecArg(a)
	}
	return strings.Join(q, " ")
}

// QuoteExecArg quotes one argument of an ExecStart= line: plain words
// stay as they are; anything else goes in double quotes with C escapes
// for quotes, backslashes and control characters. "%" becomes "%%" and "$"
// "$$" everywhere, and a lone ";" (a command separator) "\;".
func QuoteExecArg(a string) string {
	if a == ";" {
		return `\;`
	}
	plain := a != ""
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,+@%$", r)) {
			plain = false
			break
		}
	}
	var b strings.Builder
	if !plain {
		b.WriteByte('"')
	}
	for _, c := range []byte(a) {
		switch {
		case c == '%':
			b.WriteString("%%")
		case c == '$':
			b.WriteString("$$")
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	if !plain {
		b.WriteByte('"')
	}
	return b.String()
}
