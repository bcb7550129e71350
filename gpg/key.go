package gpg

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxKeySize bounds the size of a key file or downloaded key ring that is
// parsed. Real public keys are a few KiB; a ring of a handful of keys with
// many certifications stays well below this.
const MaxKeySize = 1 << 20

// OpenPGP packet tags (RFC 4880 §4.3) that are handled before a full parse.
const (
	tagSecretKey    = 5
	tagPublicKey    = 6
	tagSecretSubkey = 7
)

// Armor block types.
const (
	publicKeyBlock  = "PGP PUBLIC KEY BLOCK"
	privateKeyBlock = "PGP PRIVATE KEY BLOCK"
	signatureBlock  = "PGP SIGNATURE"
)

// Key describes one trusted (or candidate) OpenPGP public key.
type Key struct {
	// Fingerprint of the primary key, lowercase hex without spaces; also
	// the name of the key's file in the keystore.
	Fingerprint string `json:"fingerprint"`
	// UserIDs are the key's self-certified identities, primary first.
	UserIDs []string `json:"userIDs"`
	// Prefix is the image name prefix the key is trusted for ("" with Root).
	Prefix string `json:"prefix,omitempty"`
	// Root is set for keys trusted for every image (root.d).
	Root bool `json:"root"`
	// Path is the key file in the keystore ("" for a key not stored yet).
	Path string `json:"path,omitempty"`
	// Created is the primary key's creation time.
	Created time.Time `json:"created"`
	// Expires is when the primary key expires, nil if never.
	Expires *time.Time `json:"expires,omitempty"`
	// Algorithm of the primary key, such as "rsa4096" or "ed25519".
	Algorithm string `json:"algorithm"`
	// Vendor is set for keys from the system (vendor) configuration.
	Vendor bool `json:"vendor"`
	// Problem says why a stored key cannot verify signatures now
	// ("expired on ...", "revoked", ...); empty for a usable key.
	Problem string `json:"problem,omitempty"`
}

// parsedKey is a Key with what verification needs.
type parsedKey struct {
	Key
	entity  *openpgp.Entity
	armored []byte // normalized armored form, one key
}

// ParsePublicKey parses one armored or binary OpenPGP public key (a
// "transferable public key") and checks that it can be trusted now. It
// refuses data holding private key material, data with several keys (use
// SplitKeys first), keys that are revoked or expired, keys with no usable
// signing key, and algorithms other than RSA 2048–4096 and ed25519.
func ParsePublicKey(armoredOrBinary []byte) (*Key, error) {
	pk, err := parseOneKey(armoredOrBinary, time.Now())
	if err != nil {
		return nil, err
	}
	if pk.Problem != "" {
		return nil, fmt.Errorf("key %s (%s) cannot be trusted: %s", pk.Fingerprint, strings.Join(pk.UserIDs, ", "), pk.Problem)
	}
	k := pk.Key
	return &k, nil
}

// SplitKeys splits a key ring (armored or binary, one or more public keys,
// such as a pubkeys.gpg file found by discovery) into one armored public
// key per element, in the order given. It refuses private key material.
func SplitKeys(armoredOrBinary []byte) ([][]byte, error) {
	chunks, err := splitEntities(armoredOrBinary)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(chunks))
	for _, c := range chunks {
		a, err := armorBytes(publicKeyBlock, c)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// FormatFingerprint groups a hex fingerprint in blocks of four uppercase
// characters, as gpg prints it, for a human to compare.
func FormatFingerprint(fpr string) string {
	fpr = strings.ToUpper(fpr)
	var b strings.Builder
	for i := 0; i < len(fpr); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
			if i == len(fpr)/2 {
				b.WriteByte(' ')
			}
		}
		b.WriteString(fpr[i:min(i+4, len(fpr))])
	}
	return b.String()
}

// NormalizeFingerprint turns a fingerprint as a user may type it (any case,
// spaces, a 0x prefix) into the lowercase hex form used for file names. It
// fails unless the result is a 40 (v4) or 64 (v6) digit hex string.
func NormalizeFingerprint(s string) (string, error) {
	f := strings.ToLower(strings.Join(strings.Fields(s), ""))
	f = strings.TrimPrefix(f, "0x")
	if len(f) != 40 && len(f) != 64 {
		return "", fmt.Errorf("fingerprint %q: want 40 or 64 hex digits (see rkt trust list), got %d", s, len(f))
	}
	if _, err := hex.DecodeString(f); err != nil {
		return "", fmt.Errorf("fingerprint %q is not hexadecimal (see rkt trust list)", s)
	}
	return f, nil
}

// dearmor returns the binary packets of data, which is either binary or
// one or more ASCII-armored blocks of wantType (concatenated in order).
func dearmor(data []byte, wantType string) ([]byte, error) {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("no OpenPGP data (the input is empty)")
	}
	const begin = "-----BEGIN PGP"
	if trimmed[0]&0x80 != 0 {
		return data, nil // binary packets
	}
	if !bytes.HasPrefix(trimmed, []byte(begin)) {
		// Armor may follow explanatory text.
		i := bytes.Index(trimmed, []byte("\n"+begin))
		if i < 0 {
			return nil, errors.New("not OpenPGP data: neither ASCII armor nor a binary OpenPGP packet")
		}
		trimmed = trimmed[i+1:]
	}
	var out []byte
	for rest := trimmed; len(rest) > 0; {
		next := bytes.Index(rest[1:], []byte("\n"+begin))
		block := rest
		if next >= 0 {
			block, rest = rest[:next+2], rest[next+2:]
		} else {
			rest = nil
		}
		body, err := dearmorBlock(block, wantType)
		if err != nil {
			return nil, err
		}
		out = append(out, body...)
		if len(out) > MaxKeySize {
			return nil, fmt.Errorf("OpenPGP data larger than %d bytes", MaxKeySize)
		}
	}
	return out, nil
}

func dearmorBlock(block []byte, wantType string) ([]byte, error) {
	b, err := armor.Decode(bytes.NewReader(block))
	if err != nil {
		return nil, fmt.Errorf("malformed ASCII armor: %w", err)
	}
	if b.Type == privateKeyBlock {
		return nil, errors.New("the data holds private key material (a PGP PRIVATE KEY BLOCK); export only the public key with gpg --export --armor")
	}
	if b.Type != wantType {
		return nil, fmt.Errorf("armored block is a %q, want a %q", b.Type, wantType)
	}
	body, err := io.ReadAll(io.LimitReader(b.Body, MaxKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("malformed ASCII armor: %w", err)
	}
	return body, nil
}

// splitEntities returns the binary packets of each key in data.
func splitEntities(data []byte) ([][]byte, error) {
	if len(data) > 2*MaxKeySize {
		return nil, fmt.Errorf("key data of %d bytes is larger than the %d bytes allowed", len(data), 2*MaxKeySize)
	}
	bin, err := dearmor(data, publicKeyBlock)
	if err != nil {
		return nil, err
	}
	var bufs []*bytes.Buffer
	or := packet.NewOpaqueReader(bytes.NewReader(bin))
	for {
		p, err := or.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("malformed OpenPGP key data: %w", err)
		}
		switch p.Tag {
		case tagSecretKey, tagSecretSubkey:
			return nil, errors.New("the data holds private key material (a secret key packet); export only the public key with gpg --export --armor")
		case tagPublicKey:
			bufs = append(bufs, new(bytes.Buffer))
		}
		if len(bufs) == 0 {
			return nil, fmt.Errorf("malformed OpenPGP key data: packet of type %d before the first public key", p.Tag)
		}
		if err := p.Serialize(bufs[len(bufs)-1]); err != nil {
			return nil, fmt.Errorf("re-encoding OpenPGP packet: %w", err)
		}
	}
	if len(bufs) == 0 {
		return nil, errors.New("no public key found in the data")
	}
	chunks := make([][]byte, len(bufs))
	for i, b := range bufs {
		chunks[i] = b.Bytes()
	}
	return chunks, nil
}

func armorBytes(blockType string, bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, blockType, nil)
	if err != nil {
		return nil, fmt.Errorf("armoring key: %w", err)
	}
	if _, err := w.Write(bin); err != nil {
		return nil, fmt.Errorf("armoring key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("armoring key: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// parseOneKey parses data holding exactly one public key and fills Problem
// with why it cannot be used at time now. Errors are for data that is not
// a single public key at all.
func parseOneKey(data []byte, now time.Time) (*parsedKey, error) {
	chunks, err := splitEntities(data)
	if err != nil {
		return nil, err
	}
	if len(chunks) != 1 {
		return nil, fmt.Errorf("the data holds %d keys; a key file must hold exactly one", len(chunks))
	}
	e, err := openpgp.ReadEntity(packet.NewReader(bytes.NewReader(chunks[0])))
	if err != nil {
		return nil, fmt.Errorf("invalid OpenPGP public key: %w", err)
	}
	armored, err := armorBytes(publicKeyBlock, chunks[0])
	if err != nil {
		return nil, err
	}
	pk := &parsedKey{entity: e, armored: armored}
	pk.Fingerprint = hex.EncodeToString(e.PrimaryKey.Fingerprint)
	pk.Created = e.PrimaryKey.CreationTime
	pk.Algorithm = algorithmName(e.PrimaryKey)
	pk.UserIDs = userIDs(e)
	if selfSig, _ := e.PrimarySelfSignature(); selfSig != nil {
		pk.Expires = keyExpiry(e.PrimaryKey, selfSig)
	}
	if p := keyProblem(e, now); p != nil {
		pk.Problem = p.Error()
	}
	return pk, nil
}

// userIDs lists the identity names, primary identity first, then sorted.
func userIDs(e *openpgp.Entity) []string {
	primary := e.PrimaryIdentity()
	var ids []string
	for name := range e.Identities {
		if primary != nil && name == primary.Name {
			continue
		}
		ids = append(ids, name)
	}
	sort.Strings(ids)
	if primary != nil {
		ids = append([]string{primary.Name}, ids...)
	}
	return ids
}

func keyExpiry(pub *packet.PublicKey, selfSig *packet.Signature) *time.Time {
	if selfSig == nil || selfSig.KeyLifetimeSecs == nil || *selfSig.KeyLifetimeSecs == 0 {
		return nil
	}
	t := pub.CreationTime.Add(time.Duration(*selfSig.KeyLifetimeSecs) * time.Second)
	return &t
}

// algorithmName names a key's algorithm and size the way gpg does.
func algorithmName(pub *packet.PublicKey) string {
	switch pub.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly, packet.PubKeyAlgoRSAEncryptOnly:
		bits, _ := pub.BitLength()
		return fmt.Sprintf("rsa%d", bits)
	case packet.PubKeyAlgoDSA:
		bits, _ := pub.BitLength()
		return fmt.Sprintf("dsa%d", bits)
	case packet.PubKeyAlgoEd25519:
		return "ed25519"
	case packet.PubKeyAlgoEd448:
		return "ed448"
	case packet.PubKeyAlgoEdDSA, packet.PubKeyAlgoECDSA, packet.PubKeyAlgoECDH:
		curve, err := pub.Curve()
		if err != nil {
			return fmt.Sprintf("algorithm-%d", pub.PubKeyAlgo)
		}
		if curve == packet.Curve25519 {
			if pub.PubKeyAlgo == packet.PubKeyAlgoECDH {
				return "cv25519"
			}
			return "ed25519"
		}
		if curve == packet.Curve448 {
			return "ed448"
		}
		return strings.ToLower(string(curve))
	}
	return fmt.Sprintf("algorithm-%d", pub.PubKeyAlgo)
}

// checkSigningAlgorithm accepts the algorithms rkt verifies images with.
func checkSigningAlgorithm(pub *packet.PublicKey) error {
	name := algorithmName(pub)
	switch pub.PubKeyAlgo {
	case packet.PubKeyAlgoRSA, packet.PubKeyAlgoRSASignOnly:
		bits, err := pub.BitLength()
		if err != nil {
			return fmt.Errorf("RSA key %s: %w", keyID(pub), err)
		}
		if bits < 2048 || bits > 4096 {
			return fmt.Errorf("RSA key %s has %d bits; only 2048 to 4096 bits are accepted", keyID(pub), bits)
		}
		return nil
	case packet.PubKeyAlgoEd25519:
		return nil
	case packet.PubKeyAlgoEdDSA:
		if name == "ed25519" {
			return nil
		}
	}
	return fmt.Errorf("key %s uses %s; only RSA (2048 to 4096 bits) and ed25519 signing keys are accepted", keyID(pub), name)
}

func keyID(pub *packet.PublicKey) string {
	return hex.EncodeToString(pub.Fingerprint)
}

// keyProblem says why e cannot sign images at time now, or nil.
func keyProblem(e *openpgp.Entity, now time.Time) error {
	if e.Revoked(now) {
		return fmt.Errorf("revoked%s", revocationReason(e.Revocations))
	}
	selfSig, ident := e.PrimarySelfSignature()
	if selfSig == nil {
		return errors.New("has no valid self-signature")
	}
	if ident != nil && ident.Revoked(now) {
		return fmt.Errorf("its user ID %q is revoked%s", ident.Name, revocationReason(ident.Revocations))
	}
	if e.PrimaryKey.CreationTime.After(now) {
		return fmt.Errorf("created in the future (%s)", e.PrimaryKey.CreationTime.UTC().Format(time.RFC3339))
	}
	if exp := keyExpiry(e.PrimaryKey, selfSig); exp != nil && now.After(*exp) {
		return fmt.Errorf("expired on %s", exp.UTC().Format(time.RFC3339))
	}
	if selfSig.SigExpired(now) {
		return errors.New("its self-signature expired")
	}
	if err := checkSigningAlgorithm(e.PrimaryKey); err != nil {
		return err
	}
	sk, ok := e.SigningKey(now)
	if !ok {
		return errors.New("cannot sign: neither the primary key nor a valid subkey has the signing capability")
	}
	if err := checkSigningAlgorithm(sk.PublicKey); err != nil {
		return err
	}
	return nil
}

func revocationReason(revs []*packet.Signature) string {
	for _, r := range revs {
		if r.RevocationReasonText != "" {
			return fmt.Sprintf(" (%s)", r.RevocationReasonText)
		}
	}
	return ""
}
