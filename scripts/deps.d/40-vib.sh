# shellcheck shell=bash
# vib-packaging needs (sourced by scripts/install-deps.sh, which defines apt_need):
# - shellcheck: the ESXi init script (packaging/esxi/vmig-agent) is linted as busybox sh in tests;
# - zig + cargo-zigbuild: build vmig-agent against glibc 2.17 so it runs on ESXi 7.0/8.0 user
#   worlds (tests: vib-packaging/tests/esxi_build.rs; task: `cargo xtask vib`).
# Both come from PyPI into a venv under target/ (ziglang ships zig, cargo-zigbuild ships its
# binary); `cargo install cargo-zigbuild --locked` is the fallback when no wheel fits.
# Idempotent: every step checks first.
apt_need shellcheck python3 python3-venv

VIB_VENV="target/vib-venv"
if [ ! -x "$VIB_VENV/bin/python" ]; then
    echo "install-deps: creating $VIB_VENV" >&2
    python3 -m venv "$VIB_VENV"
fi
if ! "$VIB_VENV/bin/python" -c 'import ziglang' 2>/dev/null; then
    echo "install-deps: pip install ziglang into $VIB_VENV" >&2
    "$VIB_VENV/bin/pip" install --quiet --disable-pip-version-check ziglang
fi
if [ ! -x "$VIB_VENV/bin/cargo-zigbuild" ] && ! command -v cargo-zigbuild >/dev/null 2>&1; then
    echo "install-deps: pip install cargo-zigbuild into $VIB_VENV" >&2
    "$VIB_VENV/bin/pip" install --quiet --disable-pip-version-check cargo-zigbuild ||
        cargo install cargo-zigbuild --locked
fi
