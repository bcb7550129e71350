package stage0

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema"
	"github.com/klauspost/compress/gzip"

	"github.com/rkt/rkt/pkg/aci"
	"github.com/rkt/rkt/pkg/appcjson"
	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/pkg/stage1abi"
)

// Export writes an app of an exited pod as a gzipped ACI: the app's image
// tree with the changes the app made (its overlay upper directory) applied,
// and the image manifest without dependencies or path whitelist (the tree is
// complete).
func Export(p *pod.Pod, app string, w io.Writer) error {
	switch p.State() {
	case pod.StateExited, pod.StateExitedGarbage:
	default:
		return fmt.Errorf("pod %s is %s: only exited pods can be exported (rkt stop it first)", p.UUID, p.State())
	}
	st := Status(p)
	if app == "" {
		if len(st.Apps) != 1 {
			return fmt.Errorf("pod %s has %d apps: choose one with --app", p.UUID, len(st.Apps))
		}
		app = st.Apps[0].Name
	}
	info := filepath.Join(p.Path(), stage1abi.AppInfoDir(app))
	data, err := os.ReadFile(filepath.Join(info, "manifest"))
	if err != nil {
		return fmt.Errorf("pod %s has no app %q", p.UUID, app)
	}
	var m schema.ImageManifest
	if err := appcjson.Unmarshal(data, &m); err != nil {
		return err
	}
	m.Dependencies, m.PathWhitelist = nil, nil
	manifest, err := m.MarshalJSON()
	if err != nil {
		return err
	}
	lowers, err := readLines(filepath.Join(info, "lowerdirs"))
	if err != nil {
		return err
	}
	var layers []aci.Layer
	for i := len(lowers) - 1; i >= 0; i-- { // lowest first
		if _, err := os.Stat(lowers[i]); err != nil {
			return fmt.Errorf("pod %s: the image tree %s is gone from the store: %w", p.UUID, lowers[i], err)
		}
		layers = append(layers, aci.Layer{Dir: lowers[i]})
	}
	upper := filepath.Join(p.Path(), stage1abi.AppUpper(app))
	if _, err := os.Stat(upper); err == nil {
		layers = append(layers, aci.Layer{Dir: upper, Overlay: true})
	}
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	if err := aci.WriteImage(zw, manifest, layers...); err != nil {
		return err
	}
	return zw.Close()
}

func readLines(p string) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out, sc.Err()
}
