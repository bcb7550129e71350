package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Manifest is the image manifest of the benchmark image.
const Manifest = `{"acKind":"ImageManifest","acVersion":"0.8.11","name":"bench.rkt/big","labels":[{"name":"os","value":"linux"},{"name":"arch","value":"amd64"}]}`

// GenOptions describe the benchmark image. The same options always give
// the same bytes.
type GenOptions struct {
	// Size is the target total of file contents, in bytes (the tar stream
	// is a little larger: headers and padding).
	Size int64
	// Seed selects the pseudo-random content.
	Seed uint64
	// Hardlinks adds hard links to earlier files (ACIs name the target
	// with its "rootfs/" prefix, as tar writes them).
	Hardlinks bool
}

// contentKind says what a file's bytes look like.
type contentKind uint8

const (
	kindRandom contentKind = iota // incompressible
	kindText                      // text-like, compresses about 3:1
)

// fileSpec is one regular file of the image.
type fileSpec struct {
	name string // below rootfs/
	size int64
	kind contentKind
	mode int64
	seed uint64
}

// linkSpec is a symlink or hard link.
type linkSpec struct {
	name, target string
	hard         bool
}

// Plan is the layout of a generated image: directories, files and links,
// in archive order.
type Plan struct {
	Dirs  []string
	Files []fileSpec
	Links []linkSpec
}

// ContentBytes is the sum of the regular files' sizes.
func (p *Plan) ContentBytes() int64 {
	var n int64
	for _, f := range p.Files {
		n += f.size
	}
	return n
}

// tier is a band of file sizes that gets a share of the total.
type tier struct {
	min, max int64
	share    float64
}

// The size mix of a typical distribution image scaled to the target: many
// small files, some medium, a few very large. With Size = 200 MB this gives
// about 2000 files from 1 KB to 20 MB.
var tiers = []tier{
	{1 << 10, 64 << 10, 0.125},
	{64 << 10, 1 << 20, 0.375},
	{2 << 20, 20 << 20, 0.5},
}

// NewPlan lays out an image from the options.
func NewPlan(o GenOptions) *Plan {
	r := rand.New(rand.NewPCG(o.Seed, 0x62656e6368)) // "bench"
	p := &Plan{}
	p.Dirs = []string{"usr", "usr/bin", "usr/lib", "usr/share", "etc", "opt", "opt/app", "var", "var/lib"}
	ndirs := 40 + int(o.Size>>20)/2
	for len(p.Dirs) < ndirs {
		parent := p.Dirs[r.IntN(len(p.Dirs))]
		if depthOf(parent) >= 6 {
			continue
		}
		p.Dirs = append(p.Dirs, fmt.Sprintf("%s/d%03d", parent, len(p.Dirs)))
	}
	// Each tier's share is split evenly between random and text bytes, so
	// the image is half incompressible whatever the size mix.
	for _, t := range tiers {
		for _, kind := range []contentKind{kindRandom, kindText} {
			budget := int64(float64(o.Size) * t.share / 2)
			for budget > 0 {
				size := min(logUniform(r, t.min, t.max), budget)
				if budget-size < t.min/2 { // no runt at the end of a tier
					size = budget
				}
				budget -= size
				p.Files = append(p.Files, fileSpec{size: size, kind: kind, seed: r.Uint64()})
			}
		}
	}
	r.Shuffle(len(p.Files), func(i, j int) { p.Files[i], p.Files[j] = p.Files[j], p.Files[i] })
	for i := range p.Files {
		f := &p.Files[i]
		ext, mode := ".txt", int64(0o644)
		if f.kind == kindRandom {
			ext = ".bin"
			if r.IntN(4) == 0 {
				ext, mode = "", 0o755
			}
		}
		f.name = fmt.Sprintf("%s/f%05d%s", p.Dirs[r.IntN(len(p.Dirs))], i, ext)
		f.mode = mode
	}
	for i := 0; i < len(p.Files)/40; i++ {
		t := p.Files[r.IntN(len(p.Files))].name
		p.Links = append(p.Links, linkSpec{name: fmt.Sprintf("usr/lib/l%04d.so", i), target: "/" + t})
		if o.Hardlinks {
			t := p.Files[r.IntN(len(p.Files))].name
			p.Links = append(p.Links, linkSpec{name: fmt.Sprintf("usr/bin/h%04d", i), target: t, hard: true})
		}
	}
	return p
}

func depthOf(dir string) int {
	n := 1
	for _, c := range dir {
		if c == '/' {
			n++
		}
	}
	return n
}

// logUniform draws from [lo, hi] with a uniform logarithm.
func logUniform(r *rand.Rand, lo, hi int64) int64 {
	f := float64(lo) * math.Pow(float64(hi)/float64(lo), r.Float64())
	return max(lo, min(hi, int64(f)))
}

// modTime is the fixed time stamp of every entry.
var modTime = time.Date(2020, 2, 24, 0, 0, 0, 0, time.UTC)

// WriteTar writes the plan as an ACI tar stream (manifest, rootfs/...).
func (p *Plan) WriteTar(ctx context.Context, w io.Writer) error {
	tw := tar.NewWriter(w)
	hdr := func(h *tar.Header) error {
		h.ModTime = modTime
		h.Format = tar.FormatPAX
		h.Uname, h.Gname = "root", "root"
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("writing tar header of %s: %w", h.Name, err)
		}
		return nil
	}
	if err := hdr(&tar.Header{Name: "manifest", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(Manifest))}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, Manifest); err != nil {
		return fmt.Errorf("writing manifest entry: %w", err)
	}
	if err := hdr(&tar.Header{Name: "rootfs/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return err
	}
	for _, d := range p.Dirs {
		if err := hdr(&tar.Header{Name: "rootfs/" + d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return err
		}
	}
	buf := make([]byte, 256<<10)
	for _, f := range p.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := hdr(&tar.Header{Name: "rootfs/" + f.name, Typeflag: tar.TypeReg, Mode: f.mode, Size: f.size}); err != nil {
			return err
		}
		if err := writeContent(tw, f, buf); err != nil {
			return fmt.Errorf("writing content of %s: %w", f.name, err)
		}
	}
	for _, l := range p.Links {
		h := &tar.Header{Name: "rootfs/" + l.name, Typeflag: tar.TypeSymlink, Linkname: l.target, Mode: 0o777}
		if l.hard {
			h.Typeflag, h.Linkname, h.Mode = tar.TypeLink, "rootfs/"+l.target, 0o644
		}
		if err := hdr(h); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finishing tar stream: %w", err)
	}
	return nil
}

// writeContent writes a file's deterministic bytes.
func writeContent(w io.Writer, f fileSpec, buf []byte) error {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], f.seed)
	src := rand.NewChaCha8(seed)
	var tg *textGen
	if f.kind == kindText {
		tg = newTextGen(f.seed)
	}
	for left := f.size; left > 0; {
		chunk := buf[:min(int64(len(buf)), left)]
		if tg != nil {
			tg.fill(chunk)
		} else {
			src.Read(chunk)
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		left -= int64(len(chunk))
	}
	return nil
}

// Images are the two files of one benchmark image.
type Images struct {
	Plain, Gzip string
	// Uncompressed is the size of the tar stream (= the plain file).
	Uncompressed int64
	Files        int
	// ID is the image ID rkt gives the image (sha512- and the first 256
	// bits of the SHA-512 of the tar stream, in hex).
	ID string
}

// WriteImages writes <dir>/bench.aci and <dir>/bench.aci.gz in one pass
// (gzip at the default level). On error nothing is left behind.
func WriteImages(ctx context.Context, dir string, o GenOptions) (im Images, err error) {
	p := NewPlan(o)
	im = Images{Plain: filepath.Join(dir, "bench.aci"), Gzip: filepath.Join(dir, "bench.aci.gz"), Files: len(p.Files)}
	defer func() {
		if err != nil {
			os.Remove(im.Plain)
			os.Remove(im.Gzip)
		}
	}()
	pf, err := os.Create(im.Plain)
	if err != nil {
		return im, fmt.Errorf("creating benchmark image: %w", err)
	}
	defer pf.Close()
	gf, err := os.Create(im.Gzip)
	if err != nil {
		return im, fmt.Errorf("creating benchmark image: %w", err)
	}
	defer gf.Close()
	pb, gb := bufio.NewWriterSize(pf, 1<<20), bufio.NewWriterSize(gf, 1<<20)
	zw := gzip.NewWriter(gb)
	h := sha512.New()
	cw := &countWriter{w: io.MultiWriter(pb, zw, h)}
	if err := p.WriteTar(ctx, cw); err != nil {
		return im, err
	}
	im.Uncompressed = cw.n
	im.ID = "sha512-" + hex.EncodeToString(h.Sum(nil)[:32])
	err = errors.Join(zw.Close(), pb.Flush(), gb.Flush(), pf.Close(), gf.Close())
	if err != nil {
		return im, fmt.Errorf("writing benchmark images in %s: %w", dir, err)
	}
	return im, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
