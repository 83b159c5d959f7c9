# shellcheck shell=bash
# The test vCenter (tests/vcsim): govmomi's simulator built from Debian's Go toolchain and
# govmomi 0.24 library package (GOPATH mode, offline; Debian ships no vcsim binary).
# Sourced by scripts/install-deps.sh (which defines apt_need). Building here, into the same
# place the Rust harness (vmig-testkit) uses, means the first test does not wait for Go;
# build.sh is idempotent and the harness calls it again anyway.
apt_need golang-go golang-github-vmware-govmomi-dev
bash tests/vcsim/build.sh "${CARGO_TARGET_DIR:-$PWD/target}/vcsim/vcsim" >/dev/null
