// Package config reads rkt's configuration directories, as CoreOS rkt did:
// JSON files in <dir>/{paths.d,stage1.d,auth.d,dockerAuth.d}/*.json, each
// with "rktKind" and "rktVersion", read from the system (vendor) directory,
// then the local (administrator) one, then the user one. Later directories
// override earlier ones: per key for paths and stage1, per domain or
// registry for credentials.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
)

// Config is the merged configuration.
type Config struct {
	Paths      Paths                       `json:"paths"`
	Stage1     Stage1                      `json:"stage1"`
	Auth       map[string]Credentials      `json:"auth"`       // by domain
	DockerAuth map[string]BasicCredentials `json:"dockerAuth"` // by registry
	auth       map[string]authEntry
}

// Paths are the directories rkt uses.
type Paths struct {
	Data         string `json:"data,omitempty"`
	Stage1Images string `json:"stage1-images,omitempty"`
}

// Stage1 is the default stage1 image.
type Stage1 struct {
	Name     string `json:"name,omitempty"`
	Version  string `json:"version,omitempty"`
	Location string `json:"location,omitempty"`
}

// Credentials are HTTP credentials for image and key downloads, as
// rkt config shows them.
type Credentials struct {
	Type          string `json:"type"` // basic or oauth
	Source        string `json:"source"`
	Authorization string `json:"authorization,omitempty"` // only with secrets shown
	value         string
}

// BasicCredentials are registry credentials.
type BasicCredentials struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

type header struct {
	Kind    string `json:"rktKind"`
	Version string `json:"rktVersion"`
}

// Load reads and merges the given directories (system, local, user; empty
// ones are skipped).
func Load(dirs ...string) (*Config, error) {
	c := &Config{Auth: map[string]Credentials{}, DockerAuth: map[string]BasicCredentials{}}
	auth, err := loadAuth(dirs...)
	if err != nil {
		return nil, err
	}
	c.auth = auth
	for d, e := range auth {
		c.Auth[d] = Credentials{Type: e.Type, Source: e.Source, value: e.Value}
	}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		for _, kind := range []string{"paths", "stage1", "dockerAuth"} {
			files, err := filepath.Glob(filepath.Join(d, kind+".d", "*.json"))
			if err != nil {
				return nil, err
			}
			sort.Strings(files)
			for _, f := range files {
				if err := c.readFile(f, kind); err != nil {
					return nil, err
				}
			}
		}
	}
	return c, nil
}

func (c *Config) readFile(path, kind string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	var h header
	if err := json.Unmarshal(data, &h); err != nil {
		return fmt.Errorf("config file %s: not valid JSON: %v", path, err)
	}
	if h.Kind != kind {
		return fmt.Errorf("config file %s: rktKind is %q, but files in %s.d must be %q", path, h.Kind, kind, kind)
	}
	if h.Version != "v1" {
		return fmt.Errorf("config file %s: unsupported rktVersion %q (want v1)", path, h.Version)
	}
	switch kind {
	case "paths":
		var p Paths
		if err := json.Unmarshal(data, &p); err != nil {
			return fmt.Errorf("config file %s: %v", path, err)
		}
		if p.Data != "" {
			c.Paths.Data = p.Data
		}
		if p.Stage1Images != "" {
			c.Paths.Stage1Images = p.Stage1Images
		}
	case "stage1":
		var s Stage1
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("config file %s: %v", path, err)
		}
		if s.Name != "" {
			c.Stage1.Name, c.Stage1.Version = s.Name, s.Version
		}
		if s.Location != "" {
			c.Stage1.Location = s.Location
		}
	case "dockerAuth":
		var a struct {
			Registries  []string         `json:"registries"`
			Credentials BasicCredentials `json:"credentials"`
		}
		if err := json.Unmarshal(data, &a); err != nil {
			return fmt.Errorf("config file %s: %v", path, err)
		}
		for _, r := range a.Registries {
			c.DockerAuth[r] = a.Credentials
		}
	}
	return nil
}

// Header returns the Authorization header for host ("host" or
// "host:port"), or nil when none is configured.
func (c *Config) Header(host string) http.Header { return authHeader(c.auth, host) }

// WithSecrets returns a copy that shows the Authorization values, for
// rkt config --show-secrets; the plain Config never prints them.
func (c *Config) WithSecrets() *Config {
	out := *c
	out.Auth = map[string]Credentials{}
	for k, v := range c.Auth {
		v.Authorization = v.value
		out.Auth[k] = v
	}
	return &out
}

// Redacted returns a copy with registry passwords replaced, for printing.
func (c *Config) Redacted() *Config {
	out := *c
	out.DockerAuth = map[string]BasicCredentials{}
	for k, v := range c.DockerAuth {
		v.Password = "<redacted>"
		out.DockerAuth[k] = v
	}
	return &out
}
