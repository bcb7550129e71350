// Package networking gives pods their network namespace's contents through
// CNI: it loads the networks a pod asks for (the built-in default and
// default-restricted networks and the administrator's ones from
// <local-config>/net.d), runs the CNI plugins' ADD for each of them in
// order inside the pod's network namespace, forwards host ports to the pod
// (the portmap plugin), records what it did in the pod's net-info.json, and
// undoes all of it with DEL, both when a later step fails and when the pod
// is garbage collected, even after the pod was killed with SIGKILL and its
// network namespace is gone.
//
// stage0 parses the flags (ParseNetFlag, ParsePortFlag, ResolvePorts,
// ParseDNSFlags, ParseHostsEntries); stage1 calls Setup between creating
// the pod's network namespace and starting its apps, and its gc entrypoint
// calls Teardown; `rkt list` and `rkt status` read LoadNetInfo.
//
// The plugins are the stock ones from github.com/containernetworking/plugins,
// built by build-plugins.sh at the version pinned in go.mod and shipped in
// the stage1 image under /usr/lib/rkt/plugins/net. The built-in networks'
// ptp ADD and DEL, with host-local IPAM, run in the calling process
// instead (ptpInProcess), with those plugins' own library packages: two
// execs fewer each way, and the same result, leases and kernel state, so
// that either can DEL what the other set up.
package networking
