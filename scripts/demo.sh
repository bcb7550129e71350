#!/usr/bin/env bash
# The demo itself (scripts/demo installs and builds first). Everything it
# makes lives in build/demo and is removed at the start of the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=$PWD/build/demo
rkt() { echo "+ rkt $*" >&2; build/bin/rkt --dir="$demo/data" --local-config="$demo/etc" --system-config="$demo/lib" "$@"; }
rm -rf "$demo"
mkdir -p "$demo"

echo "== building a busybox image (demo.rkt.dev/hello) from Debian's busybox-static"
go run ./tests/mkaci -o "$demo/hello.aci" --name demo.rkt.dev/hello --label version=1.0 \
	--busybox --exec "/bin/sh -c 'echo Hello from a rkt pod'"

echo "== fetching it into the store (signatures are checked by default; this demo image is not signed yet)"
rkt --insecure-options=image fetch "$demo/hello.aci"
rkt image list
rkt image cat-manifest demo.rkt.dev/hello:1.0
rkt image verify demo.rkt.dev/hello:1.0
