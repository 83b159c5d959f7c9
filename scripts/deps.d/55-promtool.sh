# shellcheck shell=bash
# `promtool check metrics` validates `vmig serve`'s /metrics in vmig/tests/vmig_serve.rs (the
# built-in checker vmig::serve::metrics::check is the fallback where promtool is missing).
# Debian ships promtool in the `prometheus` package; only the binary is used, the service the
# package installs is not started by the tests.
# Sourced by scripts/install-deps.sh (which defines apt_need).
apt_need prometheus
