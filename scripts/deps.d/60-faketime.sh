# shellcheck shell=bash
# Debian's faketime (libfaketime): vmig's protocol test runs one `vmig` 5 minutes behind and
# one 5 minutes ahead to prove that locks and reservations follow vCenter's clock, not the
# workstation's (vmig/tests/vmig_protocol.rs). Sourced by scripts/install-deps.sh (which
# defines apt_need).
apt_need faketime
