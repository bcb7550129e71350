package discovery

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

// LoadAuth reads the auth.d/*.json files of the given configuration
// directories (system, local, user, in that order; "" entries and missing
// directories are skipped). A domain configured in a later directory
// overrides an earlier one; within one directory a domain may be
// configured only once. The returned function gives the Authorization
// header for a host ("host" or "host:port", matched exactly first, then
// by host name alone), or nil.
func LoadAuth(dirs ...string) (func(host string) http.Header, error) {
	headers := make(map[string]string) // domain -> Authorization value
	for _, dir := range dirs {
		if dir == "" {
			continue
		}
		inDir, err := loadAuthDir(filepath.Join(dir, "auth.d"))
		if err != nil {
			return nil, err
		}
		for d, v := range inDir {
			headers[d] = v
		}
	}
	return func(host string) http.Header {
		host = strings.ToLower(host)
		v, ok := headers[host]
		if !ok {
			if h, _, err := net.SplitHostPort(host); err == nil {
				v, ok = headers[h]
			}
		}
		if !ok {
			return nil
		}
		return http.Header{"Authorization": {v}}
	}, nil
}

func loadAuthDir(dir string) (map[string]string, error) {
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
	out := make(map[string]string)
	from := make(map[string]string)
	for _, n := range names {
		path := filepath.Join(dir, n)
		domains, value, err := parseAuthFile(path)
		if err != nil {
			return nil, err
		}
		for _, d := range domains {
			if prev, dup := from[d]; dup {
				return nil, fmt.Errorf("credentials for %s are configured twice, in %s and %s: keep one", d, prev, path)
			}
			from[d], out[d] = path, value
		}
	}
	return out, nil
}

// parseAuthFile returns the domains of one auth file and the value of the
// Authorization header for them.
func parseAuthFile(path string) ([]string, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("reading credentials: %w", err)
	}
	var f authFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, "", fmt.Errorf("credentials file %s: invalid JSON: %w", path, err)
	}
	if f.Kind != "auth" {
		return nil, "", fmt.Errorf("credentials file %s: rktKind is %q, want \"auth\"", path, f.Kind)
	}
	if f.Version != "v1" {
		return nil, "", fmt.Errorf("credentials file %s: unsupported rktVersion %q, want \"v1\"", path, f.Version)
	}
	if len(f.Domains) == 0 {
		return nil, "", fmt.Errorf("credentials file %s: no domains listed", path)
	}
	domains := make([]string, len(f.Domains))
	for i, d := range f.Domains {
		if d == "" || strings.ContainsAny(d, "/ ") {
			return nil, "", fmt.Errorf("credentials file %s: domain %q must be a host name (optionally host:port)", path, d)
		}
		domains[i] = strings.ToLower(d)
	}
	var value string
	switch f.Type {
	case "basic":
		var c basicCreds
		if err := strictUnmarshal(f.Credentials, &c); err != nil || c.User == "" {
			return nil, "", fmt.Errorf("credentials file %s: basic credentials need {\"user\": ..., \"password\": ...}", path)
		}
		value = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.User+":"+c.Password))
	case "oauth":
		var c oauthCreds
		if err := strictUnmarshal(f.Credentials, &c); err != nil || c.Token == "" {
			return nil, "", fmt.Errorf("credentials file %s: oauth credentials need {\"token\": ...}", path)
		}
		value = "Bearer " + c.Token
	default:
		return nil, "", fmt.Errorf("credentials file %s: unknown type %q, want \"basic\" or \"oauth\"", path, f.Type)
	}
	return domains, value, nil
}

func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
