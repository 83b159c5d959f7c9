package main

// What an ESXi host with NVIDIA GPUs and the vGPU manager reports, injected into vcsim 0.24,
// which has no GPU model. The simulator serialises its registry objects by reflection, so
// setting fields on the HostSystem objects is enough for the PropertyCollector to return them.

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// gpuModel is one board as the host reports it. Keys of the table match mig's catalog keys.
type gpuModel struct {
	Name        string   `json:"name"`        // PCI device name and HostGraphicsInfo.deviceName
	DeviceID    hex16    `json:"deviceId"`    // PCI device id, e.g. "0x20F1"
	SubDeviceID hex16    `json:"subDeviceId"` // non-zero: govc tells physical GPUs from vGPUs by it
	MemoryMiB   int64    `json:"memoryMiB"`   // framebuffer; graphicsInfo reports it in KiB
	VgpuTypes   []string `json:"vgpuTypes"`   // sharedPassthruGpuTypes the vGPU manager offers
}

// vgpuTypes spells a board's vGPU type names: MIG-backed "<board>-<slices>-<GB>c[me]" from
// NVIDIA's C-series tables (research mig-profiles.md §5.3) and time-sliced "<board>-<GB>c".
// Ampere boards carry the grid_ prefix, Hopper boards nvidia_ (§5.4).
func vgpuTypes(prefix, board string, mig, timeSliced string) []string {
	var out []string
	for _, s := range strings.Fields(mig + " " + timeSliced) {
		out = append(out, prefix+"_"+board+"-"+s)
	}
	return out
}

const (
	mig40  = "1-5c 1-5cme 1-10c 2-10c 3-20c 4-20c 7-40c"
	mig80  = "1-10c 1-10cme 1-20c 2-20c 3-40c 4-40c 7-80c"
	ts40   = "4c 5c 8c 10c 20c 40c"
	ts80   = "4c 5c 8c 10c 16c 20c 40c 80c"
	mig94  = "1-12c 1-12cme 1-24c 2-24c 3-47c 4-47c 7-94c"
	mig141 = "1-18c 1-18cme 1-35c 2-35c 3-71c 4-71c 7-141c"
	// H20 96GB: NVIDIA's "MIG-Backed NVIDIA vGPU for Compute for NVIDIA H20 SXM5 96GB" table.
	migH20 = "1-12c 1-12cme 1-24c 2-24c 3-48c 4-48c 7-96c"
	// RTX PRO 6000 Blackwell SE: NVIDIA's Blackwell names carry no board ("NVIDIA DC-1-8C",
	// vSphere "nvidia_dc-1-8c"); the types nvml-sim offers (docs/mig-model.md §8).
	migRTX = "1-8c 1-12c 1-24c 2-24c 2-48c 4-96c"
	tsRTX  = "8c 16c 24c 32c 48c 96c"
)

// builtinModels: keys, names, device ids and framebuffer sizes as in mig's catalog
// (docs/mig-model.md §1). Sub-device ids are plausible non-zero values; only
// A100-PCIE-40GB's 0x145F and H100-SXM5's 0x16C1 were seen in sources. Time-sliced lists for
// the 94 and 141 GB boards name only the full-board type: the smaller ones were not verified.
var builtinModels = map[string]gpuModel{
	"a100-pcie-40gb":  {"NVIDIA A100-PCIE-40GB", 0x20F1, 0x145F, 40960, vgpuTypes("grid", "a100", mig40, ts40)},
	"a100-sxm4-40gb":  {"NVIDIA A100-SXM4-40GB", 0x20B0, 0x134F, 40960, vgpuTypes("grid", "a100x", mig40, ts40)},
	"a100-pcie-80gb":  {"NVIDIA A100 80GB PCIe", 0x20B5, 0x1533, 81920, vgpuTypes("grid", "a100d", mig80, ts80)},
	"a100-sxm4-80gb":  {"NVIDIA A100-SXM4-80GB", 0x20B2, 0x1463, 81920, vgpuTypes("grid", "a100dx", mig80, ts80)},
	"a30-24gb":        {"NVIDIA A30", 0x20B7, 0x1532, 24576, vgpuTypes("grid", "a30", "1-6c 1-6cme 2-12c 2-12cme 4-24c", "4c 6c 8c 12c 24c")},
	"h100-sxm5-80gb":  {"NVIDIA H100 80GB HBM3", 0x2330, 0x16C1, 81559, vgpuTypes("nvidia", "h100xm", mig80, ts80)},
	"h100-pcie-80gb":  {"NVIDIA H100 PCIe", 0x2331, 0x1626, 81559, vgpuTypes("nvidia", "h100", mig80, ts80)},
	"h100-nvl-94gb":   {"NVIDIA H100 NVL", 0x2321, 0x1839, 95830, vgpuTypes("nvidia", "h100l", mig94, "94c")},
	"h100-sxm5-94gb":  {"NVIDIA H100", 0x2339, 0x17FC, 95830, vgpuTypes("nvidia", "h100xl", mig94, "94c")},
	"h20-96gb":        {"NVIDIA H20", 0x2329, 0x198B, 97871, vgpuTypes("nvidia", "h20", migH20, "96c")},
	"h200-sxm-141gb":  {"NVIDIA H200", 0x2335, 0x18BE, 143771, vgpuTypes("nvidia", "h200x", mig141, "141c")},
	"h200-sxm5-141gb": {"NVIDIA H200", 0x2335, 0x18BE, 143771, vgpuTypes("nvidia", "h200x", mig141, "141c")}, // alias
	"h200-nvl-141gb":  {"NVIDIA H200 NVL", 0x233B, 0x1992, 143771, vgpuTypes("nvidia", "h200", mig141, "141c")},
	"rtx-pro-6000-bse-96gb": {"NVIDIA RTX PRO 6000 Blackwell Server Edition", 0x2BB5, 0x204E, 97887,
		vgpuTypes("nvidia", "dc", migRTX, tsRTX)},
}

// gpuConfig is the -gpu-config file. Models extend or override builtinModels; rules say
// which hosts carry which GPUs. For each host the last matching rule wins, so a broad rule
// can come first and exceptions after it (an empty "gpus" list removes the GPUs again).
type gpuConfig struct {
	Models map[string]gpuModel `json:"models"`
	Rules  []gpuRule           `json:"rules"`
}

type gpuRule struct {
	Host             string     `json:"host"`             // glob (path.Match) on the host name; "" = any
	Cluster          string     `json:"cluster"`          // glob on the cluster name; set = cluster hosts only
	GPUs             []gpuCount `json:"gpus"`             // in PCI order
	VgpuTypes        []string   `json:"vgpuTypes"`        // replaces the models' lists when set
	AssignmentPolicy string     `json:"assignmentPolicy"` // "performance" (default) or "consolidation"
}

type gpuCount struct {
	Model string `json:"model"`
	Count int    `json:"count"` // 0 means 1
}

// busNumbers are PCI buses where 2-socket servers and HGX boards put their GPUs. Buses
// >= 0x80 are deliberate: clients must cope with what vcsim writes for them (unsigned).
var busNumbers = []uint8{0x3b, 0x5e, 0x86, 0xaf, 0x18, 0x2a, 0x9a, 0xdb}

func loadGPUConfig(file string) (*gpuConfig, error) {
	cfg := &gpuConfig{}
	if file != "" {
		if err := readJSON(file, cfg); err != nil {
			return nil, err
		}
	}
	models := map[string]gpuModel{}
	for k, m := range builtinModels {
		models[k] = m
	}
	for k, m := range cfg.Models {
		if m.Name == "" || m.DeviceID == 0 || m.SubDeviceID == 0 || m.MemoryMiB <= 0 {
			return nil, fmt.Errorf("GPU model %q needs name, deviceId, subDeviceId (non-zero) and memoryMiB", k)
		}
		models[strings.ToLower(k)] = m
	}
	cfg.Models = models
	for i, r := range cfg.Rules {
		for _, glob := range []string{r.Host, r.Cluster} {
			if _, err := path.Match(glob, ""); err != nil {
				return nil, fmt.Errorf("GPU rule %d: bad glob %q: %v", i, glob, err)
			}
		}
		n := 0
		for j, g := range r.GPUs {
			g.Model = strings.ToLower(g.Model)
			if _, ok := models[g.Model]; !ok {
				return nil, fmt.Errorf("GPU rule %d: unknown model %q; known: %s", i, g.Model, strings.Join(modelKeys(models), ", "))
			}
			if g.Count < 0 {
				return nil, fmt.Errorf("GPU rule %d: count %d of %s is negative", i, g.Count, g.Model)
			}
			if g.Count == 0 {
				g.Count = 1
			}
			r.GPUs[j] = g
			n += g.Count
		}
		if n > len(busNumbers) {
			return nil, fmt.Errorf("GPU rule %d: %d GPUs on one host; at most %d (an HGX board)", i, n, len(busNumbers))
		}
		switch r.AssignmentPolicy {
		case "":
			cfg.Rules[i].AssignmentPolicy = "performance"
		case "performance", "consolidation":
		default:
			return nil, fmt.Errorf("GPU rule %d: assignmentPolicy %q is not performance or consolidation", i, r.AssignmentPolicy)
		}
	}
	return cfg, nil
}

// injectGPUs applies the rules to every host and returns how many hosts got GPUs.
func injectGPUs(cfg *gpuConfig) (int, error) {
	if len(cfg.Rules) == 0 {
		return 0, nil
	}
	withGPUs := 0
	for _, e := range simulator.Map.All("HostSystem") {
		h := simulator.Map.Get(e.Reference()).(*simulator.HostSystem)
		cluster := ""
		if h.Parent != nil && h.Parent.Type == "ClusterComputeResource" {
			cluster = simulator.Map.Get(*h.Parent).(mo.Entity).Entity().Name
		}
		var rule *gpuRule
		for i, r := range cfg.Rules {
			hostOK, _ := path.Match(r.Host, h.Name)
			clusterOK, _ := path.Match(r.Cluster, cluster)
			if (r.Host == "" || hostOK) && (r.Cluster == "" || (cluster != "" && clusterOK)) {
				rule = &cfg.Rules[i]
			}
		}
		if rule != nil {
			applyRule(h, rule, cfg.Models)
			if len(h.Config.GraphicsInfo) > 0 {
				withGPUs++
			}
		}
	}
	return withGPUs, nil
}

func applyRule(h *simulator.HostSystem, r *gpuRule, models map[string]gpuModel) {
	// Hardware is a shallow copy of a template shared by all hosts: never append in place.
	var pci []types.HostPciDevice
	for _, d := range h.Hardware.PciDevice {
		if d.VendorId != nvidiaVendor {
			pci = append(pci, d)
		}
	}
	var info []types.HostGraphicsInfo
	var devTypes []types.HostGraphicsConfigDeviceType
	var offered []string
	seen := map[string]bool{}
	for _, g := range r.GPUs {
		m := models[g.Model]
		for i := 0; i < g.Count; i++ {
			bus := busNumbers[len(info)]
			id := fmt.Sprintf("0000:%02x:00.0", bus)
			pci = append(pci, types.HostPciDevice{
				Id: id, ClassId: 0x0302, Bus: bus, VendorId: nvidiaVendor, SubVendorId: nvidiaVendor,
				VendorName: "NVIDIA Corporation", DeviceId: m.DeviceID.short(), SubDeviceId: m.SubDeviceID.short(),
				DeviceName: m.Name,
			})
			info = append(info, types.HostGraphicsInfo{DeviceName: m.Name, VendorName: "NVIDIA Corporation",
				PciId: id, GraphicsType: "sharedDirect", MemorySizeInKB: m.MemoryMiB * 1024})
			devTypes = append(devTypes, types.HostGraphicsConfigDeviceType{DeviceId: id, GraphicsType: "sharedDirect"})
		}
		for _, t := range m.VgpuTypes {
			if !seen[t] {
				seen[t] = true
				offered = append(offered, t)
			}
		}
	}
	if r.VgpuTypes != nil {
		offered = r.VgpuTypes
	}
	var caps []types.HostSharedGpuCapabilities
	for _, t := range offered {
		caps = append(caps, types.HostSharedGpuCapabilities{Vgpu: t, DiskSnapshotSupported: true,
			MemorySnapshotSupported: true, SuspendSupported: true, MigrateSupported: true})
	}
	h.Hardware.PciDevice = pci
	h.Config.GraphicsInfo = info
	h.Config.SharedPassthruGpuTypes = offered
	h.Config.SharedGpuCapabilities = caps
	h.Config.GraphicsConfig = nil
	if len(info) > 0 {
		h.Config.GraphicsConfig = &types.HostGraphicsConfig{HostDefaultGraphicsType: "sharedDirect",
			SharedPassthruAssignmentPolicy: r.AssignmentPolicy, DeviceType: devTypes}
	}
}

const nvidiaVendor = int16(0x10de)

// hex16 is a PCI id: JSON accepts "0x20F1" or a number. vim25 declares PCI ids xsd:short,
// so ids >= 0x8000 travel as negative numbers (Intel's 0x8086 is -32634).
type hex16 uint16

func (h hex16) short() int16 { return int16(h) }

func (h *hex16) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := strconv.ParseUint(s, 0, 16)
	if err != nil {
		return fmt.Errorf("PCI id %s: want \"0x1234\" or a number below 65536", b)
	}
	*h = hex16(v)
	return nil
}

func modelKeys(models map[string]gpuModel) []string {
	var keys []string
	for k := range models {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
