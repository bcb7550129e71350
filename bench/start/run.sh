#!/bin/sh
# Start-latency and overhead benchmark of rkt against runc and podman (see
# bench/start/README.md). Runs as root. Arguments go to the benchmark
# program, for example:
#
#   bench/start/run.sh                          # everything, 30 rounds
#   bench/start/run.sh -rounds 40 -pods 0       # more rounds, no 100-pod part
#   bench/start/run.sh -skip podman,signed
#   bench/start/run.sh | tee /tmp/start.md      # keep the Markdown report
#
# It installs Debian's runc and podman if they are missing (to compare
# with; the benchmark goes on without them if that fails), builds rkt and
# its default stage1 image into build/bench-start (a private copy, so that
# builds of build/bin by others do not change what is measured), makes the
# busybox image running /bin/true and a throw-away gpg key that signs it,
# in a fresh directory under /var/tmp (BENCH_DIR) that is removed at exit.
set -eu

repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
if [ "$(id -u)" != 0 ]; then
	echo "run.sh: pods need root: run it as root" >&2
	exit 1
fi

if ! command -v runc >/dev/null 2>&1 || ! command -v podman >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y runc podman >&2 ||
		echo "run.sh: installing runc and podman failed: the benchmark compares with what is there" >&2
fi

out=build/bench-start
mkdir -p "$out/bin"
export CGO_ENABLED=0
version=$(git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out/bin/rkt" ./rkt
go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out/stage1-default" ./stage1/default
go build -trimpath -ldflags "-s -w" -o "$out/stage1-init" ./stage1/default/init
go build -trimpath -ldflags "-s -w" -o "$out/stage1-launcher" ./stage1/default/launcher
go run ./stage1/mkimage --flavor default --version "$version" --bin "$out/stage1-default" \
	--init "$out/stage1-init" --launcher "$out/stage1-launcher" -o "$out/bin/stage1-default.aci"
go build -o "$out/mkaci" ./tests/mkaci
go build -o "$out/startbench" ./bench/start

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/rkt-startbench.XXXXXX")
# podman's storage on a tmpfs of its own (PODMAN_DIR to choose another
# place): each podman run creates and deletes container layers, and on a
# file system shared with the others that churn lands on whichever tool
# stores its files next to it (new files cost more near recently deleted
# ones on ext4 without a journal, as on the development VM). tmpfs can
# only make podman faster.
podman_dir=$(mktemp -d "${PODMAN_DIR:-/dev/shm}/rkt-startbench-podman.XXXXXX")
cleanup() {
	GNUPGHOME="$work/gnupg" gpgconf --kill all 2>/dev/null || true
	rm -rf --one-file-system "$work" "$podman_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$out/mkaci" -o "$work/true.aci" --name bench.rkt/true --busybox --exec /bin/true

# The publisher's side: a key made for this run signs the image. The
# benchmark trusts it for the bench.rkt/true prefix in a private config.
export GNUPGHOME="$work/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
	--quick-gen-key 'rkt start benchmark <bench@rkt.invalid>' ed25519 sign 1d
gpg --batch --quiet --armor --export bench@rkt.invalid >"$work/bench-key.asc"
gpg --batch --quiet --armor --detach-sign --output "$work/true.aci.asc" "$work/true.aci"

"$out/startbench" -rkt "$out/bin/rkt" -aci "$work/true.aci" -key "$work/bench-key.asc" -work "$work" \
	-podman-dir "$podman_dir" "$@"
