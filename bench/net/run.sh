#!/bin/sh
# Start latency added by pod networking: rkt --net=default vs --net=none,
# beside podman's default network vs --network=none (Debian's podman,
# installed here if missing; skipped if it cannot run). Root only. Only
# /bin/true runs in the containers: no traffic leaves the host.
set -eu
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
[ "$(id -u)" = 0 ] || { echo "bench/net: run as root" >&2; exit 1; }
command -v podman >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y podman runc >&2 || true
make all >&2
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rkt-netbench.XXXXXX")
cleanup() {
	build/bin/rkt --dir="$work/data" gc --grace-period=0s >/dev/null 2>&1 || true
	podman --root "$work/podman/root" --runroot "$work/podman/run" rmi -af >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
go run ./tests/mkaci -o "$work/true.aci" --name bench.rkt/true --busybox --exec /bin/true
build/bin/rkt --dir="$work/data" --insecure-options=image fetch "$work/true.aci" >/dev/null
pimg=""
pargs="--root $work/podman/root --runroot $work/podman/run"
if command -v podman >/dev/null 2>&1; then
	mkdir -p "$work/rootfs" && tar -xf "$work/true.aci" -C "$work" rootfs
	if tar -C "$work/rootfs" -c . | podman $pargs import - bench-true >/dev/null 2>&1; then
		pimg=bench-true
	fi
fi
go run ./bench/net -rkt build/bin/rkt -dir "$work/data" -podman-image "$pimg" -podman-global "$pargs" \
	-podman-args "--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024" "$@"
