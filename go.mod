module github.com/rkt/rkt

go 1.26

// Every binary built here (rkt, the stage1 binaries, the CNI plugins
// build-plugins.sh builds) starts many times per pod and runs briefly or
// idles: skip the cgroup CPU-limit probe at start and its periodic
// re-check (Go 1.25's container-aware GOMAXPROCS), as before Go 1.25.
godebug (
	containermaxprocs=0
	updatemaxprocs=0
)

require (
	github.com/ProtonMail/go-crypto v1.3.0
	github.com/appc/spec v0.8.11
	github.com/containernetworking/cni v1.3.0
	github.com/containernetworking/plugins v1.9.1
	github.com/cyphar/filepath-securejoin v0.6.0
	github.com/elastic/go-seccomp-bpf v1.6.0
	github.com/klauspost/compress v1.18.0
	github.com/moby/sys/mountinfo v0.7.2
	github.com/spf13/cobra v1.10.1
	github.com/spf13/pflag v1.0.9
	github.com/ulikunitz/xz v0.5.12
	github.com/vishvananda/netlink v1.3.1
	go.etcd.io/bbolt v1.4.3
	golang.org/x/net v0.48.0
	golang.org/x/sys v0.40.0
	golang.org/x/term v0.38.0
)

require (
	github.com/alexflint/go-filemutex v1.3.0 // indirect
	github.com/cloudflare/circl v1.6.0 // indirect
	github.com/coreos/go-iptables v0.8.0 // indirect
	github.com/coreos/go-semver v0.3.1 // indirect
	github.com/cpuguy83/go-md2man/v2 v2.0.7 // indirect
	github.com/godbus/dbus/v5 v5.1.0 // indirect
	github.com/google/gofuzz v1.2.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/mattn/go-shellwords v1.0.12 // indirect
	github.com/networkplumbing/go-nft v0.4.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/russross/blackfriday/v2 v2.1.0 // indirect
	github.com/safchain/ethtool v0.6.2 // indirect
	github.com/vishvananda/netns v0.0.5 // indirect
	go4.org v0.0.0-20260112195520-a5071408f32f // indirect
	golang.org/x/crypto v0.46.0 // indirect
	gopkg.in/inf.v0 v0.9.1 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
	sigs.k8s.io/knftables v0.0.18 // indirect
)
