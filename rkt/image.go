package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/pkg/pod"
	"github.com/rkt/rkt/pkg/stage1abi"
	"github.com/rkt/rkt/pkg/termsafe"
)

var cmdImage = &cobra.Command{
	Use:   "image",
	Short: "Manage the images in the store",
}

func init() { cmdRkt.AddCommand(cmdImage) }

var imageListFlags struct {
	fields   string
	sort     string
	order    string
	full     bool
	noLegend bool
	format   string
}

// imageListFields are the columns of image list, with how to show and sort.
var imageListFields = map[string]struct {
	header string
	show   func(i *imagestore.ImageInfo, full bool, latest bool) string
	less   func(a, b *imagestore.ImageInfo) bool
}{
	"id": {"ID", func(i *imagestore.ImageInfo, full, _ bool) string {
		if full {
			return i.Key
		}
		return imagestore.ShortKey(i.Key)
	}, func(a, b *imagestore.ImageInfo) bool { return a.Key < b.Key }},
	"name": {"NAME", func(i *imagestore.ImageInfo, _, _ bool) string { return nameWithVersion(i) },
		func(a, b *imagestore.ImageInfo) bool { return nameWithVersion(a) < nameWithVersion(b) }},
	"size": {"SIZE", func(i *imagestore.ImageInfo, full, _ bool) string {
		if full {
			return fmt.Sprint(i.StoreSize())
		}
		return humanSize(i.StoreSize())
	}, func(a, b *imagestore.ImageInfo) bool { return a.StoreSize() < b.StoreSize() }},
	"importtime": {"IMPORT TIME", func(i *imagestore.ImageInfo, _, _ bool) string { return humanTime(i.ImportTime) },
		func(a, b *imagestore.ImageInfo) bool { return a.ImportTime.Before(b.ImportTime) }},
	"lastused": {"LAST USED", func(i *imagestore.ImageInfo, _, _ bool) string { return humanTime(i.LastUsed) },
		func(a, b *imagestore.ImageInfo) bool { return a.LastUsed.Before(b.LastUsed) }},
	"latest": {"LATEST", func(_ *imagestore.ImageInfo, _, latest bool) string { return fmt.Sprint(latest) }, nil},
}

func nameWithVersion(i *imagestore.ImageInfo) string {
	if v, ok := i.Labels["version"]; ok {
		return i.Name + ":" + v
	}
	return i.Name
}

var cmdImageList = &cobra.Command{
	Use:   "list",
	Short: "List the images in the store",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		f := &imageListFlags
		fields := strings.Split(f.fields, ",")
		for _, fl := range fields {
			if _, ok := imageListFields[fl]; !ok {
				return usagef("--fields: unknown field %q (known: id,name,size,importtime,lastused,latest)", fl)
			}
		}
		sorter, ok := imageListFields[f.sort]
		if !ok || sorter.less == nil {
			return usagef("--sort: cannot sort by %q (use id, name, size, importtime or lastused)", f.sort)
		}
		if f.order != "asc" && f.order != "desc" {
			return usagef("--order: want asc or desc, not %q", f.order)
		}
		images, err := storeForReading().List()
		if err != nil {
			return err
		}
		sort.SliceStable(images, func(a, b int) bool {
			if f.order == "desc" {
				return sorter.less(images[b], images[a])
			}
			return sorter.less(images[a], images[b])
		})
		// The latest image of a name is its most recent import.
		newest := map[string]*imagestore.ImageInfo{}
		for _, i := range images {
			if n := newest[i.Name]; n == nil || i.ImportTime.After(n.ImportTime) {
				newest[i.Name] = i
			}
		}
		var header []string
		for _, fl := range fields {
			header = append(header, imageListFields[fl].header)
		}
		rows := [][]string{}
		type jsonImage struct {
			ID         string            `json:"id"`
			Name       string            `json:"name"`
			Labels     map[string]string `json:"labels,omitempty"`
			Size       int64             `json:"size"` // on disk, blob and tree
			Unpacked   int64             `json:"unpacked_size"`
			BlobSize   int64             `json:"blob_size"`
			ImportTime time.Time         `json:"import_time"`
			LastUsed   time.Time         `json:"last_used"`
			Latest     bool              `json:"latest"`
			Source     string            `json:"source,omitempty"`
			MediaType  string            `json:"media_type"`
			Layers     int               `json:"layers,omitempty"`
		}
		js := []jsonImage{}
		for _, i := range images {
			latest := newest[i.Name] == i
			var row []string
			for _, fl := range fields {
				row = append(row, imageListFields[fl].show(i, f.full, latest))
			}
			rows = append(rows, row)
			mt := i.MediaType
			if mt == "" {
				mt = imagestore.MediaTypeACI
			}
			js = append(js, jsonImage{i.Key, i.Name, i.Labels, i.StoreSize(), i.UnpackedSize, i.Size, i.ImportTime, i.LastUsed, latest, i.Source, mt, len(i.Layers)})
		}
		return printTable(cmd.OutOrStdout(), f.format, f.noLegend, header, rows, js)
	},
}

// storeForReading opens the store without creating it, so that read-only
// commands work for users who may read but not write the data dir.
func storeForReading() *imagestore.Store {
	return imagestore.OpenReadOnly(filepath.Join(globalFlags.Dir, "cas"))
}

var cmdImageRm = &cobra.Command{
	Use:     "rm IMAGE...",
	Short:   "Remove images (and their rendered trees) from the store",
	Args:    cobra.MinimumNArgs(1),
	PreRunE: ensureSuperuser,
	RunE: func(cmd *cobra.Command, args []string) error {
		ctx, cancel := signalContext()
		defer cancel()
		s, err := openStore()
		if err != nil {
			return err
		}
		var failed []string
		for _, ref := range args {
			info, err := s.Resolve(ref)
			if err == nil {
				if uuid := podUsing(info); uuid != "" {
					err = fmt.Errorf("used by pod %s: remove the pod first (rkt rm %s, or rkt gc once it exited)", uuid, uuid)
				}
			}
			if err == nil {
				err = s.Remove(ctx, info.Key, podTrees())
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "rkt: image %s: %s\n", termsafe.String(ref), termsafe.String(err.Error()))
				failed = append(failed, ref)
				continue
			}
			fmt.Fprintf(cmd.OutOrStdout(), "successfully removed image %s\n", info.Key)
		}
		if len(failed) > 0 {
			return &exitError{code: exitFailure}
		}
		return nil
	},
}

var imageGCFlags struct{ grace time.Duration }

var cmdImageGC = &cobra.Command{
	Use:     "gc",
	Short:   "Remove images unused for the grace period, and store leftovers",
	Args:    cobra.NoArgs,
	PreRunE: ensureSuperuser,
	RunE: func(cmd *cobra.Command, args []string) error {
		ctx, cancel := signalContext()
		defer cancel()
		s, err := openStore()
		if err != nil {
			return err
		}
		rep, err := s.GC(ctx, imageGCFlags.grace, podTrees())
		if rep != nil {
			w := cmd.OutOrStdout()
			for _, k := range rep.Removed {
				fmt.Fprintf(w, "removed image %s\n", k)
			}
			for _, k := range rep.Kept {
				fmt.Fprintf(w, "kept image %s: used by a running pod\n", k)
			}
			if rep.Trees+rep.Blobs > 0 {
				fmt.Fprintf(w, "removed %d unreferenced trees and %d unreferenced blobs\n", rep.Trees, rep.Blobs)
			}
		}
		return err
	},
}

var overwriteFlag bool

var cmdImageExport = &cobra.Command{
	Use:   "export IMAGE OUTPUT.aci",
	Short: "Write an image, exactly as fetched, to a file",
	Args:  cobra.ExactArgs(2),
	RunE: func(cmd *cobra.Command, args []string) error {
		s := storeForReading()
		info, err := s.Resolve(args[0])
		if err != nil {
			return err
		}
		if !info.IsACI() {
			return fmt.Errorf("image %s is a %s: image export writes ACIs only (exporting layered images is not supported yet)", imagestore.ShortKey(info.Key), info.MediaType)
		}
		in, err := os.Open(s.BlobPath(info.Key))
		if err != nil {
			return fmt.Errorf("image %s: reading its blob: %w (rkt image gc, then fetch it again)", args[0], err)
		}
		defer in.Close()
		return writeFileAtomic(args[1], overwriteFlag, func(w io.Writer) error {
			_, err := io.Copy(w, in)
			return err
		})
	},
}

// writeFileAtomic writes a file through a temp file in the same directory.
func writeFileAtomic(dst string, overwrite bool, fill func(io.Writer) error) error {
	if _, err := os.Lstat(dst); err == nil && !overwrite {
		return fmt.Errorf("%s already exists: pass --overwrite to replace it", dst)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

var rootfsOnly bool

// newCopyTreeCmd builds image extract and image render: both copy an
// image's tree out of the store (render includes dependencies).
func newCopyTreeCmd(use, short string, withDeps bool) *cobra.Command {
	c := &cobra.Command{
		Use:   use + " IMAGE DIR",
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := storeForReading()
			info, err := s.Resolve(args[0])
			if err != nil {
				return err
			}
			if len(info.Layers) > 0 {
				return fmt.Errorf("image %s has %d layers: image %s of a layered image is not supported yet", imagestore.ShortKey(info.Key), len(info.Layers), use)
			}
			treeID := info.Key
			if withDeps {
				treeID = info.TreeID
				if err := s.VerifyTree(info); err != nil {
					return err
				}
			}
			return copyOut(s.TreePath(treeID), args[1], rootfsOnly, overwriteFlag)
		},
	}
	c.Flags().BoolVar(&rootfsOnly, "rootfs-only", false, "write only the root file system, without the manifest")
	c.Flags().BoolVar(&overwriteFlag, "overwrite", false, "replace DIR if it exists")
	return c
}

var cmdImageCatManifest = &cobra.Command{
	Use:   "cat-manifest IMAGE",
	Short: "Print an image's manifest",
	Args:  cobra.ExactArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		info, err := storeForReading().Resolve(args[0])
		if err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), info.Manifest, prettyPrint)
	},
}

var prettyPrint bool

var cmdImageVerify = &cobra.Command{
	Use:   "verify IMAGE...",
	Short: "Re-hash images' rendered trees and compare with the digests recorded at fetch",
	Args:  cobra.MinimumNArgs(1),
	RunE: func(cmd *cobra.Command, args []string) error {
		s := storeForReading()
		bad := 0
		for _, ref := range args {
			info, err := s.Resolve(ref)
			if err == nil {
				err = s.VerifyTree(info)
			}
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "rkt: %s\n", termsafe.String(err.Error()))
				bad++
				continue
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", imagestore.ShortKey(info.Key))
		}
		if bad > 0 {
			return &exitError{code: exitFailure}
		}
		return nil
	},
}

func init() {
	f := cmdImageList.Flags()
	f.StringVar(&imageListFlags.fields, "fields", "id,name,size,importtime,lastused,latest", "comma-separated columns: id,name,size,importtime,lastused,latest")
	f.StringVar(&imageListFlags.sort, "sort", "importtime", "column to sort by")
	f.StringVar(&imageListFlags.order, "order", "asc", "sort order: asc or desc")
	f.BoolVar(&imageListFlags.full, "full", false, "print full IDs and sizes in bytes")
	f.BoolVar(&imageListFlags.noLegend, "no-legend", false, "do not print the header")
	f.StringVar(&imageListFlags.format, "format", "", "output format: json or json-pretty")
	cmdImageGC.Flags().DurationVar(&imageGCFlags.grace, "grace-period", 24*time.Hour, "remove images not used for this long")
	cmdImageExport.Flags().BoolVar(&overwriteFlag, "overwrite", false, "replace the output file if it exists")
	cmdImageCatManifest.Flags().BoolVar(&prettyPrint, "pretty-print", true, "indent the JSON")
	cmdImage.AddCommand(cmdImageList, cmdImageRm, cmdImageGC, cmdImageExport, cmdImageCatManifest, cmdImageVerify,
		newCopyTreeCmd("extract", "Copy an image's own root file system (no dependencies) out of the store", false),
		newCopyTreeCmd("render", "Copy an image's rendered root file system (with dependencies) out of the store", true))
}

// podTrees returns the trees that existing pods (in any state) use, each
// with a pod using it: their stage1 gc entrypoint and rkt export need them
// until the pod is removed.
func podTrees() map[string]bool {
	out := map[string]bool{}
	for _, trees := range podTreeSets() {
		for id := range trees {
			out[id] = true
		}
	}
	return out
}

// podUsing returns the UUID of a pod using the image (one that lists all
// of the image's trees, or its own tree), or "".
func podUsing(info *imagestore.ImageInfo) string {
	for uuid, trees := range podTreeSets() {
		if trees[info.Key] {
			return uuid
		}
		all := true
		for _, t := range info.Trees() {
			all = all && trees[t]
		}
		if all {
			return uuid
		}
	}
	return ""
}

// podTreeSets maps each existing pod to the trees it uses.
func podTreeSets() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	pods, _ := pod.List(podsDir())
	for _, p := range pods {
		data, err := os.ReadFile(filepath.Join(p.Path(), stage1abi.TreeIDsFile))
		if err != nil {
			continue
		}
		set := map[string]bool{}
		for _, id := range strings.Fields(string(data)) {
			set[id] = true
		}
		out[p.UUID] = set
	}
	return out
}
