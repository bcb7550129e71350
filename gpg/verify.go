package gpg

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxSignatureSize bounds a detached signature file.
const MaxSignatureSize = 64 << 10

// VerifyError is the error CheckSignature returns: it names the image, the
// keys tried and the signer, and unwraps to ErrNoTrustedKeys, ErrUntrusted
// or ErrBadSignature.
type VerifyError struct {
	Image  string   // image name the signature was checked for
	Prefix string   // the trust prefix to use for this image (its name)
	Tried  []string // fingerprints of the keys trusted for Image, with their scope
	Signer string   // fingerprint or key ID of the signing key, if known
	Reason string   // what went wrong
	Kind   error    // ErrNoTrustedKeys, ErrUntrusted or ErrBadSignature
	// Others are the prefixes keys are trusted for, when none covers
	// Image (with ErrNoTrustedKeys).
	Others []string
}

func (e *VerifyError) Error() string {
	var b strings.Builder
	kind := e.Kind.Error()
	if errors.Is(e.Kind, ErrNoTrustedKeys) && len(e.Others) > 0 {
		kind = "no key trusted for this image" // but keys for others
	}
	fmt.Fprintf(&b, "verifying signature of image %q: %s: %s", e.Image, kind, e.Reason)
	if e.Signer != "" {
		fmt.Fprintf(&b, "; signed by key %s", e.Signer)
	}
	if len(e.Tried) == 0 {
		fmt.Fprintf(&b, "; no key is trusted for prefix %q, its parents, or root", e.Prefix)
	} else {
		fmt.Fprintf(&b, "; keys tried for prefix %q: %s", e.Prefix, strings.Join(e.Tried, ", "))
	}
	if errors.Is(e.Kind, ErrBadSignature) {
		// Trusting another key would not help: the signature itself
		// is wrong.
		b.WriteString("; check that the image and its signature belong together and were downloaded completely, then fetch it again")
		return b.String()
	}
	fmt.Fprintf(&b, "; to trust a key for this image run: rkt trust --prefix %s <key-file-or-url> (without a key argument it is discovered)", e.Prefix)
	return b.String()
}

func (e *VerifyError) Unwrap() error { return e.Kind }

// imageReader fails reads once ctx is done and remembers read errors, to
// tell I/O failures apart from signature mismatches.
type imageReader struct {
	ctx context.Context
	r   io.Reader
	err error
}

func (c *imageReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return 0, err
	}
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}

// CheckSignature checks the detached signature sig (armored or binary) over
// signed (read from its start) for the image called name. The signature
// must come from a key trusted for name (root.d or a path-component prefix
// of name) that is not revoked or expired, and must not have been made
// after the key expired. It returns the trusted key that signed. Errors are
// *VerifyError values wrapping ErrNoTrustedKeys, ErrUntrusted or
// ErrBadSignature, except for context cancellation and I/O errors on signed.
func (ks *Keystore) CheckSignature(ctx context.Context, name string, signed io.ReadSeeker, sig io.Reader) (*Key, error) {
	if !acIdentifier.MatchString(name) {
		return nil, fmt.Errorf("verifying signature: %q is not a valid image name (lowercase letters, digits and single '-', '.', '_', '~' or '/' between them)", name)
	}
	keys, err := ks.keysFor(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("verifying signature of image %q: %w", name, err)
	}
	verr := &VerifyError{Image: name, Prefix: name, Tried: describeKeys(keys)}
	fail := func(kind error, format string, args ...any) (*Key, error) {
		verr.Kind, verr.Reason = kind, fmt.Sprintf(format, args...)
		return nil, verr
	}
	if len(keys) == 0 {
		if verr.Others = ks.otherPrefixes(ctx); len(verr.Others) > 0 {
			return fail(ErrNoTrustedKeys, "keys in %s are trusted only for other prefixes: %s (a prefix covers the names below it by path component: see rkt trust list)", ks.describeDirs(), strings.Join(verr.Others, ", "))
		}
		return fail(ErrNoTrustedKeys, "no key in %s", ks.describeDirs())
	}

	sigs, sigBin, err := readSignature(sig)
	if err != nil {
		return fail(ErrBadSignature, "%v", err)
	}
	verr.Signer = issuerString(sigs[0])

	now := ks.clock()
	var ring openpgp.EntityList
	byEntity := make(map[*openpgp.Entity]*parsedKey)
	for _, k := range keys {
		if k.entity == nil || strings.HasPrefix(k.Problem, "file name") {
			continue // unreadable or misnamed files are never used
		}
		ring = append(ring, k.entity)
		byEntity[k.entity] = k
	}
	var holder *openpgp.Entity
	for _, sp := range sigs {
		if holder = findHolder(ring, sp); holder != nil {
			break
		}
	}
	if holder == nil {
		elsewhere := ks.otherScopes(ctx, sigs)
		if elsewhere != "" {
			return fail(ErrUntrusted, "the signing key is trusted only for %s, not for this image", elsewhere)
		}
		return fail(ErrUntrusted, "the signing key is not trusted for this image")
	}
	if _, err := signed.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("verifying signature of image %q: rewinding image: %w", name, err)
	}
	cfg := &packet.Config{Time: func() time.Time { return now }}
	img := &imageReader{ctx: ctx, r: signed}
	s, signer, err := openpgp.VerifyDetachedSignature(ring, img, bytes.NewReader(sigBin), cfg)
	if img.err != nil {
		return nil, fmt.Errorf("verifying signature of image %q: reading image: %w", name, img.err)
	}
	var pk *parsedKey
	if signer != nil {
		pk = byEntity[signer]
	}
	if pk == nil {
		pk = byEntity[holder]
	}
	verr.Signer = fmt.Sprintf("%s (%s)", pk.Fingerprint, strings.Join(pk.UserIDs, ", "))
	switch {
	case err == nil, errors.Is(err, pgperrors.ErrKeyRevoked), errors.Is(err, pgperrors.ErrKeyExpired), errors.Is(err, pgperrors.ErrSignatureExpired):
		// The signature is cryptographically good; now judge the key.
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return fail(ErrUntrusted, "the signing key has no signing capability for this signature")
	default:
		return fail(ErrBadSignature, "the signature does not match the image (tampered or truncated image, or a signature of another file): %v", err)
	}
	if s != nil && s.CreationTime.After(now) {
		return fail(ErrUntrusted, "the signature is dated %s, in the future: check the clocks of this host and the signer", s.CreationTime.UTC().Format(time.RFC3339))
	}
	if s != nil && signer != nil {
		if derr := checkSignatureDetails(signer, s); derr != nil {
			return fail(ErrUntrusted, "%v", derr)
		}
	}
	if pk.Problem != "" {
		return fail(ErrUntrusted, "the signing key cannot be used: %s", pk.Problem)
	}
	if err != nil {
		return fail(ErrUntrusted, "%v", err)
	}
	k := pk.Key
	return &k, nil
}

// readSignature reads and parses a detached signature, armored or binary,
// which may hold several signature packets.
func readSignature(sig io.Reader) ([]*packet.Signature, []byte, error) {
	if sig == nil {
		return nil, nil, errors.New("no signature given (missing .asc file?)")
	}
	data, err := io.ReadAll(io.LimitReader(sig, MaxSignatureSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading signature: %v", err)
	}
	if len(data) > MaxSignatureSize {
		return nil, nil, fmt.Errorf("signature is larger than %d bytes", MaxSignatureSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, errors.New("the signature is empty (missing .asc file?)")
	}
	bin, err := dearmor(data, signatureBlock)
	if err != nil {
		return nil, nil, fmt.Errorf("signature: %v", err)
	}
	var sigs []*packet.Signature
	r := bytes.NewReader(bin)
	for r.Len() > 0 {
		p, err := packet.Read(r)
		if err != nil {
			return nil, nil, fmt.Errorf("malformed or truncated signature: %v", err)
		}
		s, ok := p.(*packet.Signature)
		if !ok {
			return nil, nil, fmt.Errorf("not a detached signature: it holds a %T packet", p)
		}
		if s.SigType != packet.SigTypeBinary && s.SigType != packet.SigTypeText {
			return nil, nil, fmt.Errorf("not a document signature (signature type %#x)", s.SigType)
		}
		if s.IssuerKeyId == nil {
			return nil, nil, errors.New("the signature does not name its issuer key")
		}
		if s.Hash == crypto.MD5 || s.Hash == crypto.SHA1 || s.Hash == crypto.RIPEMD160 {
			return nil, nil, fmt.Errorf("the signature uses the weak hash %v; sign with SHA-256 or better (gpg --digest-algo SHA256)", s.Hash)
		}
		sigs = append(sigs, s)
	}
	if len(sigs) == 0 {
		return nil, nil, errors.New("no signature packet found")
	}
	return sigs, bin, nil
}

func issuerString(s *packet.Signature) string {
	if len(s.IssuerFingerprint) > 0 {
		return hex.EncodeToString(s.IssuerFingerprint)
	}
	if s.IssuerKeyId != nil {
		return fmt.Sprintf("%016x (key ID)", *s.IssuerKeyId)
	}
	return "unknown"
}

// findHolder returns the entity in ring holding the key that issued s.
func findHolder(ring openpgp.EntityList, s *packet.Signature) *openpgp.Entity {
	for _, e := range ring {
		if keyMatches(e.PrimaryKey, s) {
			return e
		}
		for _, sub := range e.Subkeys {
			if keyMatches(sub.PublicKey, s) {
				return e
			}
		}
	}
	return nil
}

func keyMatches(pub *packet.PublicKey, s *packet.Signature) bool {
	if len(s.IssuerFingerprint) > 0 {
		return bytes.Equal(pub.Fingerprint, s.IssuerFingerprint)
	}
	return s.IssuerKeyId != nil && pub.KeyId == *s.IssuerKeyId
}

// checkSignatureDetails applies rules beyond go-crypto's: the key that made
// the signature must use an accepted algorithm, and the signature must not
// predate the key or postdate its expiry.
func checkSignatureDetails(e *openpgp.Entity, s *packet.Signature) error {
	pub, binding := e.PrimaryKey, (*packet.Signature)(nil)
	if selfSig, _ := e.PrimarySelfSignature(); selfSig != nil {
		binding = selfSig
	}
	if !keyMatches(pub, s) {
		for _, sub := range e.Subkeys {
			if keyMatches(sub.PublicKey, s) {
				pub, binding = sub.PublicKey, sub.Sig
				break
			}
		}
	}
	if err := checkSigningAlgorithm(pub); err != nil {
		return err
	}
	created := s.CreationTime
	if created.Before(pub.CreationTime) {
		return fmt.Errorf("the signature is dated %s, before its key %s was created (%s)", created.UTC().Format(time.RFC3339), keyID(pub), pub.CreationTime.UTC().Format(time.RFC3339))
	}
	primarySig, _ := e.PrimarySelfSignature()
	for _, exp := range []*time.Time{keyExpiry(e.PrimaryKey, primarySig), keyExpiry(pub, binding)} {
		if exp != nil && created.After(*exp) {
			return fmt.Errorf("the signature was made on %s, after the key expired on %s", created.UTC().Format(time.RFC3339), exp.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

func describeKeys(keys []*parsedKey) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		scope := "prefix " + k.Prefix
		if k.Root {
			scope = "root"
		}
		d := fmt.Sprintf("%s (%s)", k.Fingerprint, scope)
		if k.Problem != "" {
			d = fmt.Sprintf("%s (%s; %s)", k.Fingerprint, scope, k.Problem)
		}
		out = append(out, d)
	}
	return out
}

func (ks *Keystore) describeDirs() string {
	var dirs []string
	for _, d := range []string{ks.LocalDir, ks.SystemDir} {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		return "no keystore directory"
	}
	return strings.Join(dirs, " or ")
}

// otherScopes names the prefixes for which the signer of s is trusted,
// when it is not trusted for name; "" if it is not trusted at all.
func (ks *Keystore) otherScopes(ctx context.Context, sigs []*packet.Signature) string {
	files, err := ks.effectiveFiles(ctx)
	if err != nil {
		return ""
	}
	var scopes []string
	for _, f := range files {
		k := ks.loadFile(f)
		if k.entity == nil {
			continue
		}
		for _, s := range sigs {
			if findHolder(openpgp.EntityList{k.entity}, s) != nil {
				scopes = append(scopes, fmt.Sprintf("prefix %q (key %s)", k.Prefix, k.Fingerprint))
				break
			}
		}
	}
	sort.Strings(scopes)
	return strings.Join(scopes, ", ")
}

// otherPrefixes lists, sorted and quoted, the prefixes any key is trusted
// for.
func (ks *Keystore) otherPrefixes(ctx context.Context) []string {
	files, err := ks.effectiveFiles(ctx)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range files {
		p := strconv.Quote(f.prefix)
		if f.root {
			p = "root"
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}
