# The pyVmomi client of `cargo xtask scale` (see scale.rs: PY_MODES, run_pyvmomi).
import json, sys
from pyVim.connect import Connect, Disconnect
from pyVmomi import vim, vmodl
host, port, user, pwd = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
HOST_PATHS = json.loads(sys.argv[5]); VM_PATHS = json.loads(sys.argv[6]); MODE = sys.argv[7]
# vcsim advertises API 6.5, whose pyVmomi types lack the vGPU fields the simulator returns;
# speak 7.0 as a real vCenter would (a negative port means plain HTTP).
si = Connect(host=host, port=-port, user=user, pwd=pwd, version="vim.version.v7_0")
content = si.RetrieveContent()
pc = content.propertyCollector
PC = vmodl.query.PropertyCollector
def retrieve(container, types, propsets):
    view = content.viewManager.CreateContainerView(container, types, True)
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=view, skip=True, selectSet=[PC.TraversalSpec(name="traverseEntities", type=vim.view.ContainerView, path="view", skip=False)])],
        propSet=[PC.PropertySpec(type=t, pathSet=p, all=False) for t, p in propsets])
    res = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions(maxObjects=1000))
    while res:
        for o in res.objects:
            yield o
        if not res.token:
            break
        res = pc.ContinueRetrievePropertiesEx(res.token)
    view.Destroy()
fields = content.customFieldsManager.field
hosts = vms = vgpus = 0
if MODE == "same":
    for dc in list(retrieve(content.rootFolder, [vim.Datacenter], [(vim.Datacenter, ["name"])])):
        for cr in list(retrieve(dc.obj, [vim.ComputeResource], [(vim.ComputeResource, ["name"])])):
            for o in retrieve(cr.obj, [vim.HostSystem, vim.VirtualMachine], [(vim.HostSystem, HOST_PATHS), (vim.VirtualMachine, VM_PATHS)]):
                if isinstance(o.obj, vim.HostSystem):
                    hosts += 1
                else:
                    vms += 1
else:
    clusters = {}
    for o in retrieve(content.rootFolder, [vim.HostSystem, vim.VirtualMachine], [(vim.HostSystem, HOST_PATHS + ["parent"]), (vim.VirtualMachine, VM_PATHS + ["config.hardware.device"])]):
        if isinstance(o.obj, vim.HostSystem):
            hosts += 1
            for p in o.propSet:
                if p.name == "parent":
                    clusters[p.val._moId] = clusters.get(p.val._moId, 0) + 1
        else:
            vms += 1
            for p in o.propSet:
                if p.name == "config.hardware.device":
                    vgpus += sum(1 for d in p.val if isinstance(d.backing, vim.vm.device.VirtualPCIPassthrough.VmiopBackingInfo))
Disconnect(si)
print(json.dumps({"hosts": hosts, "vms": vms, "vgpu_devices": vgpus}))
