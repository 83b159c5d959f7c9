#!/usr/bin/env bash
# Builds the test vCenter (tests/vcsim) from Debian's golang-go and
# golang-github-vmware-govmomi-dev: GOPATH mode, no network, no cgo.
#
#   tests/vcsim/build.sh [OUTPUT]      default OUTPUT: <repo>/target/vcsim/vcsim
#
# Prints the binary's path on stdout (build logs go to stderr). Idempotent and safe to run
# from several processes at once: it rebuilds only when the sources, this script, the Go
# toolchain or the govmomi package changed, under an exclusive lock next to OUTPUT.
# Exit status 3 means the toolchain or govmomi is missing (see scripts/install-deps.sh).
set -euo pipefail

src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$src/../.." && pwd)"
out="${1:-$root/target/vcsim/vcsim}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
gopath=/usr/share/gocode

missing() {
    echo "tests/vcsim/build.sh: $1 Install the Debian packages golang-go and" \
        "golang-github-vmware-govmomi-dev (run scripts/install-deps.sh as root)." >&2
    exit 3
}
command -v go >/dev/null 2>&1 || missing "no Go toolchain ('go') on PATH."
[ -d "$gopath/src/github.com/vmware/govmomi/simulator" ] || missing "govmomi is not in $gopath."

out_dir="$(dirname "$out")"
mkdir -p "$out_dir"
export GO111MODULE=off GOPATH="$gopath" GOCACHE="$out_dir/gocache" GOFLAGS="" CGO_ENABLED=0

# One builder at a time; the others wait and then find the stamp up to date.
exec 9>"$out.lock"
flock 9

inputs="$(
    cat "$src"/*.go "$src/build.sh"
    go version
    dpkg-query -W -f='${Version}' golang-github-vmware-govmomi-dev 2>/dev/null || true
)"
stamp="$(printf '%s' "$inputs" | sha256sum | cut -d' ' -f1)"
if [ -x "$out" ] && [ "$(cat "$out.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "$out"
    exit 0
fi

echo "tests/vcsim/build.sh: building $out (the first build takes a minute)" >&2
cd "$src"
# vet and the unit tests run only when something changed, so they cost nothing afterwards.
go vet . >&2
go test -count=1 . >&2
go build -trimpath -o "$out.tmp" .
mv -f "$out.tmp" "$out"
echo "$stamp" >"$out.stamp"
echo "$out"
