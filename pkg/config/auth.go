package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// authFile is rkt's "auth" configuration kind, one JSON file in
// <config>/auth.d/:
//
//	{"rktKind": "auth", "rktVersion": "v1", "domains": ["example.com"],
//	 "type": "basic", "credentials": {"user": "...", "password": "..."}}
//	{"rktKind": "auth", "rktVersion": "v1", "domains": ["example.com"],
//	 "type": "oauth", "credentials": {"token": "..."}}
type authFile struct {
	Kind        string          `json:"rktKind"`
	Version     string          `json:"rktVersion"`
	Domains     []string        `json:"domains"`
	Type        string          `json:"type"`
	Credentials json.RawMessage `json:"credentials"`
}

type basicCreds struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

type oauthCreds struct {
	Token string `json:"token"`
}

// authEntry is the credential for one domain.
type authEntry struct {
	Type   string // basic or oauth
	Value  string // the Authorization header value
	Source string // the file it came from
}

// loadAuth reads the auth.d/*.json files of the given configuration
// directories (system, local, user, in that order; "" entries and missing
// directories are skipped). A domain configured in a later directory
// overrides an earlier one; within one directory a domain may be
// configured only once.
func loadAuth(dirs ...string) (map[string]authEntry, error) {
	entries := make(map[string]authEntry)
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		inDir, err := loadAuthDir(filepath.Join(dir, "auth.d"))
		if err != nil {
			return nil, err
		}
		for d, v := range inDir {
			entries[d] = v
		}
	}
	return entries, nil
}

// LoadAuth returns a function giving the Authorization header for a host
// ("host" or "host:port", matched exactly first, then by host name alone),
// or nil, from the auth.d files of dirs.
func LoadAuth(dirs ...string) (func(host string) http.Header, error) {
	entries, err := loadAuth(dirs...)
	if err != nil {
		return nil, err
	}
	return func(host string) http.Header { return authHeader(entries, host) }, nil
}

func authHeader(entries map[string]authEntry, host string) http.Header {
	host = strings.ToLower(host)
	e, ok := entries[host]
	if !ok {
		if h, _, err := net.SplitHostPort(host); err == nil {
			e, ok = entries[h]
		}
	}
	if !ok {
		return nil
	}
	return http.Header{"Authorization": {e.Value}}
}

func loadAuthDir(dir string) (map[string]authEntry, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading credentials directory: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	out := make(map[string]authEntry)
	for _, n := range names {
		path := filepath.Join(dir, n)
		domains, typ, value, err := parseAuthFile(path)
		if err != nil {
			return nil, err
		}
		for _, d := range domains {
			if prev, dup := out[d]; dup {
				return nil, fmt.Errorf("credentials for %s are configured twice, in %s and %s: keep one", d, prev.Source, path)
			}
			out[d] = authEntry{Type: typ, Value: value, Source: path}
		}
	}
	return out, nil
}

// parseAuthFile returns the domains of one auth file, its type and the
// value of the Authorization header for them.
func parseAuthFile(path string) ([]string, string, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", "", fmt.Errorf("reading credentials: %w", err)
	}
	var f authFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, "", "", fmt.Errorf("credentials file %s: invalid JSON: %w", path, err)
	}
	if f.Kind != "auth" {
		return nil, "", "", fmt.Errorf("credentials file %s: rktKind is %q, want \"auth\"", path, f.Kind)
	}
	if f.Version != "v1" {
		return nil, "", "", fmt.Errorf("credentials file %s: unsupported rktVersion %q, want \"v1\"", path, f.Version)
	}
	if len(f.Domains) == 0 {
		return nil, "", "", fmt.Errorf("credentials file %s: no domains listed", path)
	}
	domains := make([]string, len(f.Domains))
	for i, d := range f.Domains {
		if d == "" || strings.ContainsAny(d, "/ ") {
			return nil, "", "", fmt.Errorf("credentials file %s: domain %q must be a host name (optionally host:port)", path, d)
		}
		domains[i] = strings.ToLower(d)
	}
	var value string
	switch f.Type {
	case "basic":
		var c basicCreds
		if err := strictUnmarshal(f.Credentials, &c); err != nil || c.User == "" {
			return nil, "", "", fmt.Errorf("credentials file %s: basic credentials need {\"user\": ..., \"password\": ...}", path)
		}
		value = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.User+":"+c.Password))
	case "oauth":
		var c oauthCreds
		if err := strictUnmarshal(f.Credentials, &c); err != nil || c.Token == "" {
			return nil, "", "", fmt.Errorf("credentials file %s: oauth credentials need {\"token\": ...}", path)
		}
		value = "Bearer " + c.Token
	default:
		return nil, "", "", fmt.Errorf("credentials file %s: unknown type %q, want \"basic\" or \"oauth\"", path, f.Type)
	}
	return domains, f.Type, value, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
