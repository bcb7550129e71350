#!/bin/sh
# Builds rkt and the fetch benchmark, then runs it. Arguments go to
# fetchbench (see bench/README.md or `bench/run.sh -h`), for example:
#
#   bench/run.sh                 # 5 rounds, 200 MB image, gzip and plain
#   bench/run.sh -n 3 -formats plain
#   RKT=/usr/local/bin/rkt bench/run.sh   # measure another rkt binary
#
# As root it passes -drop-caches (the caches are dropped and the image read
# back before every timed run: much steadier figures, see the README);
# BENCH_DROP_CACHES=0 turns that off. BENCH_DIR (default /var/tmp) is where
# the images and outputs go.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=build/bench
mkdir -p "$out"

export CGO_ENABLED=0
if [ -z "${RKT:-}" ]; then
	# A private copy, so that builds of build/bin/rkt by others do not
	# change the binary under measurement.
	RKT=$out/rkt
	go build -o "$RKT" ./rkt
fi
go build -o "$out/fetchbench" ./bench/fetchbench

drop=
if [ "$(id -u)" = 0 ] && [ "${BENCH_DROP_CACHES:-1}" != 0 ]; then
	drop=-drop-caches
fi
exec "$out/fetchbench" -rkt "$RKT" -dir "${BENCH_DIR:-/var/tmp}" $drop "$@"
