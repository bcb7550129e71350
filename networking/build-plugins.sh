#!/bin/sh
# Builds the CNI plugins rkt ships in its stage1 image, static, at the
# version of github.com/containernetworking/plugins pinned in go.mod.
#
#   networking/build-plugins.sh OUTDIR
#
# Run from anywhere inside the module. Needs only the Go toolchain ($GO,
# else go from PATH) and the module proxy (or a filled module cache).
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")"

p=github.com/containernetworking/plugins/plugins
# The list is also in tools.go (which keeps go.mod and go.sum complete for
# these packages): change both together.
CGO_ENABLED=0 "${GO:-go}" build -trimpath -ldflags="-s -w" -o "$out/" \
	$p/main/ptp \
	$p/main/bridge \
	$p/main/macvlan \
	$p/main/ipvlan \
	$p/main/loopback \
	$p/ipam/host-local \
	$p/meta/portmap \
	$p/meta/firewall
