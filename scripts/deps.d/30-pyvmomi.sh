# shellcheck shell=bash
# pyVmomi, the independent vim25 client that vcenter-client's interop test
# (vcenter-client/tests/client_interop.rs running tests/interop/pyvmomi_interop.py)
# checks against: it must read back what vcenter-client wrote to vcsim, and vice versa.
# Installed from PyPI into target/venv-pyvmomi (nothing outside the repo).
# Sourced by scripts/install-deps.sh (which defines apt_need). Idempotent.
apt_need python3 python3-venv

PYVMOMI_VENV="target/venv-pyvmomi"
if [ ! -x "$PYVMOMI_VENV/bin/python" ]; then
    echo "install-deps: creating $PYVMOMI_VENV" >&2
    python3 -m venv "$PYVMOMI_VENV"
fi
if ! "$PYVMOMI_VENV/bin/python" -c 'import pyVmomi' 2>/dev/null; then
    echo "install-deps: pip install pyvmomi into $PYVMOMI_VENV" >&2
    "$PYVMOMI_VENV/bin/pip" install --quiet --disable-pip-version-check pyvmomi
fi
