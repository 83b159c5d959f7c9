#!/usr/bin/env python3
"""Interop check between vcenter-client and pyVmomi, an independent vim25 client.

Driven by vcenter-client/tests/client_interop.rs against one vcsim:
  1. verify: read with pyVmomi what vcenter-client wrote (a HostSystem custom
     value, a vGPU device on a VM, the VM's memoryReservationLockedToMax);
  2. write: set a custom value on another host and add a vGPU with the memory
     lock to another VM, for vcenter-client to read back.
Prints one JSON line; exits non-zero with a message on any mismatch.
"""

import argparse
import json
import ssl
import sys
from urllib.parse import urlparse

from pyVim.connect import Disconnect, SmartConnect
from pyVim.task import WaitForTask
from pyVmomi import vim


def fail(msg):
    print(json.dumps({"ok": False, "error": msg}))
    sys.exit(1)


def find(content, vimtype, name):
    view = content.viewManager.CreateContainerView(content.rootFolder, [vimtype], True)
    try:
        for obj in view.view:
            if obj.name == name:
                return obj
    finally:
        view.Destroy()
    fail(f"no {vimtype.__name__} named {name}")


def vgpu_profiles(vm):
    out = []
    for dev in vm.config.hardware.device:
        if isinstance(dev, vim.vm.device.VirtualPCIPassthrough) and isinstance(
            dev.backing, vim.vm.device.VirtualPCIPassthrough.VmiopBackingInfo
        ):
            out.append(dev.backing.vgpu)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--cafile", required=True)
    p.add_argument("--field", required=True)
    p.add_argument("--expect-host", required=True)
    p.add_argument("--expect-value", required=True)
    p.add_argument("--expect-vm", required=True)
    p.add_argument("--expect-profile", required=True)
    p.add_argument("--write-host", required=True)
    p.add_argument("--write-value", required=True)
    p.add_argument("--write-vm", required=True)
    p.add_argument("--write-profile", required=True)
    a = p.parse_args()

    url = urlparse(a.url)
    ctx = ssl.create_default_context(cafile=a.cafile)
    si = SmartConnect(host=url.hostname, port=url.port, user=a.user, pwd=a.password, sslContext=ctx)
    try:
        content = si.RetrieveContent()
        keys = {f.name: f.key for f in content.customFieldsManager.field}
        if a.field not in keys:
            fail(f"custom field {a.field} not defined; have {sorted(keys)}")
        key = keys[a.field]

        # 1. What vcenter-client wrote. Last value per key wins (vcsim 0.24 appends).
        host = find(content, vim.HostSystem, a.expect_host)
        values = [v.value for v in host.customValue if v.key == key]
        if not values or values[-1] != a.expect_value:
            fail(f"{a.expect_host} {a.field}: expected {a.expect_value!r}, pyVmomi read {values!r}")
        vm = find(content, vim.VirtualMachine, a.expect_vm)
        profiles = vgpu_profiles(vm)
        if a.expect_profile not in profiles:
            fail(f"{a.expect_vm}: vGPU {a.expect_profile} missing, pyVmomi read {profiles!r}")
        if vm.config.memoryReservationLockedToMax is not True:
            fail(f"{a.expect_vm}: memoryReservationLockedToMax is {vm.config.memoryReservationLockedToMax!r}")

        # 2. Write for vcenter-client to read back.
        host2 = find(content, vim.HostSystem, a.write_host)
        content.customFieldsManager.SetField(entity=host2, key=key, value=a.write_value)
        vm2 = find(content, vim.VirtualMachine, a.write_vm)
        backing = vim.vm.device.VirtualPCIPassthrough.VmiopBackingInfo(vgpu=a.write_profile)
        spec = vim.vm.ConfigSpec(
            memoryReservationLockedToMax=True,
            deviceChange=[
                vim.vm.device.VirtualDeviceSpec(
                    operation="add", device=vim.vm.device.VirtualPCIPassthrough(backing=backing)
                )
            ],
        )
        WaitForTask(vm2.ReconfigVM_Task(spec))
        print(json.dumps({"ok": True, "read_profiles": profiles, "key": key}))
    finally:
        Disconnect(si)


if __name__ == "__main__":
    main()
