package stage0

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rkt/rkt/imagestore"
	"github.com/rkt/rkt/pkg/aci"
	"github.com/rkt/rkt/stage0/fetch"
)

// stage brings one image into the store's tmp area and checks its
// signature. If the store already has what src points at (a fresh remote
// cache entry, or an unchanged ETag), it returns that image instead.
func (f *Fetcher) stage(ctx context.Context, src *source, expect aci.NameLabels) (*imagestore.Staged, *imagestore.ImageInfo, error) {
	opts := imagestore.ImportOptions{Expect: expect, MaxSize: f.MaxSize, Source: src.ref}
	path := src.local
	sigPath := src.sigPath
	if src.local != "" {
		// A local file already imported and unchanged since (same size,
		// mtime, inode) is not read again unless --pull-policy=update: this
		// keeps `rkt run ./x.aci` (and the stage1 image) off the hashing path.
		fp, err := fileFingerprint(src.local)
		if err != nil {
			return nil, nil, fmt.Errorf("image %s: %w", src.ref, err)
		}
		key := "file://" + src.local
		if f.PullPolicy != PullUpdate {
			if r, _ := f.Store.GetRemote(key); r != nil && r.ETag == fp {
				if info, err := f.Store.Get(r.BlobKey); err == nil {
					return nil, info, nil
				}
			}
		}
		opts.Remote = &imagestore.Remote{URL: key, ETag: fp, DownloadTime: time.Now()}
	}
	if src.url != "" {
		res, cached, err := f.download(ctx, src)
		if err != nil || cached != nil {
			return nil, cached, err
		}
		path, opts.Move = res.Path, true
		opts.Remote = &imagestore.Remote{URL: src.url, ETag: res.Remote.ETag, MaxAge: res.Remote.MaxAge, DownloadTime: res.Remote.DownloadTime}
		defer os.Remove(res.Path) // gone already if moved into the store
	}
	st, err := f.Store.Stage(ctx, path, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", src.ref, err)
	}
	signer, err := f.verify(ctx, src, st, sigPath)
	if err != nil {
		st.Abort()
		return nil, nil, err
	}
	st.SignedBy = signer
	return st, nil, nil
}

// download fetches a remote image honouring the pull policy and the remote
// cache record.
func (f *Fetcher) download(ctx context.Context, src *source) (*fetch.Result, *imagestore.ImageInfo, error) {
	prev, err := f.Store.GetRemote(src.url)
	if err != nil {
		return nil, nil, err
	}
	var cached *imagestore.ImageInfo
	if prev != nil {
		if info, err := f.Store.Get(prev.BlobKey); err == nil {
			cached = info
		} else {
			prev = nil // the image is gone: download again
		}
	}
	if cached != nil && f.PullPolicy != PullUpdate {
		return nil, cached, nil
	}
	if f.PullPolicy == PullNever {
		return nil, nil, fmt.Errorf("image %s is %w (--pull-policy=never)", src.url, ErrNotInStore)
	}
	var fprev *fetch.Remote
	if prev != nil {
		fprev = &fetch.Remote{URL: prev.URL, ETag: prev.ETag, MaxAge: prev.MaxAge, DownloadTime: prev.DownloadTime, BlobKey: prev.BlobKey}
	}
	res, err := fetch.Download(ctx, src.url, fprev, f.fetchOptions(src.url))
	if err != nil {
		return nil, nil, err
	}
	if res.NotModified {
		r := &imagestore.Remote{URL: src.url, ETag: res.Remote.ETag, MaxAge: res.Remote.MaxAge,
			DownloadTime: res.Remote.DownloadTime, BlobKey: prev.BlobKey}
		if r.DownloadTime.IsZero() {
			r.DownloadTime = time.Now()
		}
		return nil, cached, f.Store.PutRemote(r)
	}
	return res, nil, nil
}

func (f *Fetcher) fetchOptions(label string) fetch.Options {
	o := f.HTTP
	o.TmpDir = f.Store.TmpDir()
	o.InsecureHTTP = f.InsecureHTTP
	o.InsecureTLS = f.InsecureTLS
	o.Progress = f.Progress
	o.Label = label
	return o
}

// verify checks the staged blob's detached signature, from sigPath (local)
// or the signature URL (remote).
func (f *Fetcher) verify(ctx context.Context, src *source, st *imagestore.Staged, sigPath string) (string, error) {
	name := st.Manifest.Name.String()
	if f.SkipVerify {
		return "", nil // Fetch warns
	}
	if f.Verifier == nil {
		return "", fmt.Errorf("image %s: signature verification is not available in this build; pass --insecure-options=image to fetch it unverified", src.ref)
	}
	if src.url != "" {
		sigURL := src.sigURL
		if sigURL == "" {
			sigURL = src.url + ".asc"
		}
		res, err := fetch.Download(ctx, sigURL, nil, f.fetchOptions(sigURL+" (signature)"))
		if err != nil {
			var he *fetch.HTTPError
			if errors.As(err, &he) && he.StatusCode == 404 {
				return "", fmt.Errorf("image %s has no signature at %s: ask its publisher for one, or pass --insecure-options=image to skip the check", src.ref, sigURL)
			}
			return "", fmt.Errorf("fetching signature of %s: %w", src.ref, err)
		}
		defer os.Remove(res.Path)
		sigPath = res.Path
	}
	sig, err := os.Open(sigPath)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("image %s has no signature (looked for %s): sign it (see docs/signing.md), give one with --signature, or pass --insecure-options=image to skip the check", src.ref, sigPath)
	}
	if err != nil {
		return "", err
	}
	defer sig.Close()
	img, err := os.Open(st.BlobFile())
	if err != nil {
		return "", err
	}
	defer img.Close()
	return f.Verifier.Verify(ctx, name, img, sig)
}

func (f *Fetcher) warn(msg string) {
	if f.Warn != nil {
		f.Warn(msg)
	}
}

// fileFingerprint identifies a local file's version without reading it.
func fileFingerprint(p string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("local:%d:%d:%d.%d:%d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec), nil
}
