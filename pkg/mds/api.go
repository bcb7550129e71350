package mds

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/appc/spec/schema/types"
)

// The appc metadata API (appc spec, ace.md, "App Container Metadata
// Service"), below $AC_METADATA_URL, which is http://HOST:PORT/TOKEN.
const (
	apiBase     = "/acMetadata/v1"
	contentJSON = "application/json"
	contentText = "text/plain; charset=us-ascii"
	// maxForm bounds a sign or verify request's body.
	maxForm = 1 << 20
)

// KeySize is the size of the host's HMAC key.
const KeySize = 64

// LoadKey reads the host's HMAC key from path, creating it (0600, from
// the system's random source) if it does not exist.
func LoadKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) < 32 {
			return nil, fmt.Errorf("HMAC key %s: too short (%d bytes): remove it to have a new one made", path, len(key))
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read the HMAC key: %w", err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("make the HMAC key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadKey(path)
		}
		return nil, fmt.Errorf("make the HMAC key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("make the HMAC key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("make the HMAC key: %w", err)
	}
	return key, nil
}

// API serves the metadata API of the registered pods.
type API struct {
	Reg *Registry
	Key []byte
}

var _ http.Handler = (*API)(nil)

// sign is the HMAC-SHA512 of the pod's UUID and the content.
func (a *API) sign(uuid types.UUID, content string) []byte {
	h := hmac.New(sha512.New, a.Key)
	h.Write(uuid[:])
	h.Write([]byte(content))
	return h.Sum(nil)
}

func reply(w http.ResponseWriter, ctype string, body []byte) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func fail(w http.ResponseWriter, code int, msg string) {
	http.Error(w, msg, code)
}

// ServeHTTP answers GET and POST requests on /TOKEN/acMetadata/v1/...
// Only the pod the token was given to, from its own address, gets an
// answer; everything else is 403 (or 404 for paths outside the API).
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/")
	if !ok {
		fail(w, http.StatusNotFound, "not found")
		return
	}
	token, path, ok := strings.Cut(rest, "/")
	if !ok || !strings.HasPrefix("/"+path, apiBase+"/") {
		fail(w, http.StatusNotFound, "not found")
		return
	}
	path = strings.TrimPrefix("/"+path, apiBase)
	if r.Header.Get("Metadata-Flavor") != "AppContainer" {
		fail(w, http.StatusBadRequest, "the Metadata-Flavor: AppContainer header is required")
		return
	}
	p := a.Reg.byTok(token)
	if p == nil || !p.allowedFrom(remoteIP(r)) {
		fail(w, http.StatusForbidden, "forbidden")
		return
	}
	path = strings.TrimSuffix(path, "/")
	switch {
	case r.Method == http.MethodGet && path == "/pod/annotations":
		a.json(w, p.manifest.Annotations)
	case r.Method == http.MethodGet && path == "/pod/manifest":
		reply(w, contentJSON, p.raw)
	case r.Method == http.MethodGet && path == "/pod/uuid":
		reply(w, contentText, []byte(p.uuid))
	case r.Method == http.MethodPost && path == "/pod/hmac/sign":
		a.handleSign(w, r, p)
	case r.Method == http.MethodPost && path == "/pod/hmac/verify":
		a.handleVerify(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/apps/"):
		a.handleApp(w, p, strings.TrimPrefix(path, "/apps/"))
	default:
		fail(w, http.StatusNotFound, "not found")
	}
}

func (a *API) json(w http.ResponseWriter, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	reply(w, contentJSON, data)
}

func (a *API) handleApp(w http.ResponseWriter, p *pod, rest string) {
	name, what, _ := strings.Cut(rest, "/")
	ra := p.manifest.Apps.Get(types.ACName(name))
	if ra == nil {
		fail(w, http.StatusNotFound, "no such app")
		return
	}
	switch what {
	case "annotations":
		an, _ := p.appAnnotations(name)
		a.json(w, an)
	case "image/manifest":
		reply(w, contentJSON, p.images[name])
	case "image/id":
		reply(w, contentText, []byte(ra.Image.ID.String()))
	default:
		fail(w, http.StatusNotFound, "not found")
	}
}

func parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		fail(w, http.StatusBadRequest, "bad form: "+err.Error())
		return false
	}
	return true
}

func (a *API) handleSign(w http.ResponseWriter, r *http.Request, p *pod) {
	if !parseForm(w, r) {
		return
	}
	content := r.PostForm.Get("content")
	uuid, err := types.NewUUID(p.uuid)
	if err != nil {
		fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	reply(w, contentText, []byte(base64.StdEncoding.EncodeToString(a.sign(*uuid, content))))
}

// handleVerify checks a signature made by any pod (registered or not:
// the UUID is part of what was signed).
func (a *API) handleVerify(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	uuid, err := types.NewUUID(r.PostForm.Get("uuid"))
	if err != nil {
		fail(w, http.StatusBadRequest, "uuid: "+err.Error())
		return
	}
	sig, err := base64.StdEncoding.DecodeString(r.PostForm.Get("signature"))
	if err != nil {
		fail(w, http.StatusBadRequest, "signature: not base64")
		return
	}
	if !hmac.Equal(sig, a.sign(*uuid, r.PostForm.Get("content"))) {
		fail(w, http.StatusForbidden, "signature does not match")
		return
	}
	reply(w, contentText, nil)
}

func remoteIP(r *http.Request) net.IP {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}
