#!/usr/bin/env bash
# The demo itself (scripts/demo installs and builds first): build an image,
# sign it with a key made for the demo, trust that key for the image's
# prefix, fetch it with signature verification on, and run it as a pod.
# Everything lives in build/demo and is removed at the start of the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=$PWD/build/demo
rkt() {
	echo "+ rkt $*" >&2
	build/bin/rkt --dir="$demo/data" --local-config="$demo/etc" --system-config="$demo/lib" "$@"
}
cleanup() { GNUPGHOME="$demo/gnupg" gpgconf --kill all 2>/dev/null || true; }
trap cleanup EXIT
# Collect pods of an earlier run first (their cgroups live outside build/).
[ -d "$demo/data" ] && rkt gc --grace-period=0s >/dev/null 2>&1 || true
rm -rf "$demo"
mkdir -p "$demo"

echo "== 1. build an image (demo.rkt.dev/hello) from Debian's busybox-static"
go run ./tests/mkaci -o "$demo/hello-1.0-linux-amd64.aci" --name demo.rkt.dev/hello --label version=1.0 \
	--busybox --exec "/bin/sh -c 'echo Hello from a signed rkt pod; uname -n'"

echo "== 2. sign it with a key made for this demo (the publisher's side)"
export GNUPGHOME="$demo/gnupg"
mkdir -m 700 "$GNUPGHOME"
gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
	--quick-gen-key 'rkt demo <demo@rkt.dev>' ed25519 sign 1d
gpg --batch --quiet --armor --export demo@rkt.dev >"$demo/demo-key.gpg"
gpg --batch --quiet --armor --detach-sign --output "$demo/hello-1.0-linux-amd64.aci.asc" "$demo/hello-1.0-linux-amd64.aci"

echo "== 3. trust the key for the demo.rkt.dev/hello prefix (the operator's side)"
rkt trust --prefix demo.rkt.dev/hello --skip-fingerprint-review "$demo/demo-key.gpg"
rkt trust list

echo "== 4. an image swapped for another under the same name and signature is refused, and nothing is stored"
go run ./tests/mkaci -o "$demo/swapped.aci" --name demo.rkt.dev/hello --label version=1.0 \
	--busybox --exec "/bin/sh -c 'echo I am not what was signed'"
cp "$demo/hello-1.0-linux-amd64.aci.asc" "$demo/swapped.aci.asc"
if rkt fetch "$demo/swapped.aci"; then echo "demo: the swapped image was accepted!" >&2; exit 1; fi
rkt image list

echo "== 5. fetch it: the signature is checked against the trusted key"
rkt fetch "$demo/hello-1.0-linux-amd64.aci"
rkt image list
rkt image verify demo.rkt.dev/hello:1.0

echo "== 6. run it as a pod, by name, with CPU and memory limits"
rkt run demo.rkt.dev/hello:1.0 --cpu=750m --memory=128M --net=none
rkt run demo.rkt.dev/hello:1.0 --memory=128M --net=none \
	--exec /bin/sh -- -c 'echo "memory limit inside the pod: $(cat /sys/fs/cgroup/memory/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"'

echo "== 7. serve a page from a signed pod on its own network, through a forwarded port"
go run ./tests/mkaci -o "$demo/web-1.0-linux-amd64.aci" --name demo.rkt.dev/web --label version=1.0 \
	--busybox --port http:tcp:8080 \
	--exec "/bin/sh -c 'mkdir -p /www && echo \"Hello from pod \$(hostname)\" >/www/index.html && exec httpd -f -p 8080 -h /www'"
gpg --batch --quiet --armor --detach-sign --output "$demo/web-1.0-linux-amd64.aci.asc" "$demo/web-1.0-linux-amd64.aci"
rkt trust --prefix demo.rkt.dev/web --skip-fingerprint-review "$demo/demo-key.gpg" 2>/dev/null
port=18080
rkt run "$demo/web-1.0-linux-amd64.aci" --cpu=750m --memory=128M --port=http:127.0.0.1:$port \
	--uuid-file-save="$demo/web.uuid" >"$demo/web.log" 2>&1 &
runpid=$!
# Stops the web pod if it runs (again at exit, when it may be gone: no error).
stop_web() {
	if [ -s "$demo/web.uuid" ]; then rkt stop --uuid-file="$demo/web.uuid" >/dev/null 2>&1 || true; fi
	wait "$runpid" 2>/dev/null || true
}
trap 'stop_web; cleanup' EXIT
for _ in $(seq 50); do [ -s "$demo/web.uuid" ] && break; sleep 0.1; done
rkt status --wait-ready=10s --uuid-file="$demo/web.uuid"
rkt list
page=""
for _ in $(seq 50); do page=$(curl -fsS --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null) && break; sleep 0.1; done
echo "+ curl http://127.0.0.1:$port/ -> $page"
[ -n "$page" ] || { echo "demo: no answer from the pod" >&2; exit 1; }
stop_web
rkt status --uuid-file="$demo/web.uuid"

echo "== 8. clean up"
rkt gc --grace-period=0s
rkt list
