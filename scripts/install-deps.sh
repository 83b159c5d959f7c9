#!/usr/bin/env bash
# Installs what a fresh Debian (bookworm or later) machine lacks to build and test vmig.
# Idempotent: every step checks first. Each area of the project keeps its own step in
# scripts/deps.d/*.sh (sourced in name order), so a component's needs live next to its owner.
# With arguments, only the named steps run (e.g. `install-deps.sh 20-go-vcsim` for the demo).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_UPDATED=0
# apt_need PKG... : install the Debian packages that are not installed yet.
apt_need() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing Debian packages: ${missing[*]} (run as root or install them)" >&2
        return 1
    fi
    if [ $APT_UPDATED = 0 ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    echo "install-deps: apt-get install ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy

steps=()
if [ $# -eq 0 ]; then
    steps=(scripts/deps.d/*.sh)
else
    for name in "$@"; do steps+=("scripts/deps.d/${name%.sh}.sh"); done
fi
for step in "${steps[@]}"; do
    if [ ! -e "$step" ]; then
        echo "install-deps: no step $step (see scripts/deps.d/)" >&2
        exit 2
    fi
    # shellcheck source=/dev/null
    . "$step"
done
