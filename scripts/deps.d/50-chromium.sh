# shellcheck shell=bash
# Headless Chromium renders `vmig report --format html` in vmig's report tests
# (vmig/tests/vmig_report.rs) and takes the admin guide's screenshot; Debian's package is `chromium`.
# Sourced by scripts/install-deps.sh (which defines apt_need).
apt_need chromium
