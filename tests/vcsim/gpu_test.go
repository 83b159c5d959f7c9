package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PCI ids are xsd:short on the wire: what vcsim writes for 0x8086 must match a real host.
func TestPciIdsAreSignedShorts(t *testing.T) {
	for id, want := range map[hex16]int16{0x10de: 4318, 0x20F1: 0x20F1, 0x8086: -32634, 0xFFFF: -1} {
		if got := id.short(); got != want {
			t.Errorf("%#x.short() = %d, want %d", uint16(id), got, want)
		}
	}
	var h hex16
	if err := json.Unmarshal([]byte(`"0x9A1B"`), &h); err != nil || h != 0x9A1B {
		t.Errorf("hex string: %v %#x", err, uint16(h))
	}
	if err := json.Unmarshal([]byte(`70000`), &h); err == nil {
		t.Error("70000 accepted as a PCI id")
	}
}

// Every board offers the 7 (A30: 5) MIG-backed types of NVIDIA's C-series tables; the RTX
// PRO 6000 the 6 DC types nvml-sim simulates.
func TestBuiltinModels(t *testing.T) {
	for key, m := range builtinModels {
		mig := 0
		for _, v := range m.VgpuTypes {
			if strings.Count(v, "-") == 2 {
				mig++
			}
		}
		want := 7
		if strings.HasPrefix(key, "a30") {
			want = 5
		}
		if strings.HasPrefix(key, "rtx-pro-6000") {
			want = 6
		}
		if mig != want || m.SubDeviceID == 0 || m.DeviceID == 0 {
			t.Errorf("%s: %d MIG-backed types (want %d), ids %#x/%#x", key, mig, want, uint16(m.DeviceID), uint16(m.SubDeviceID))
		}
	}
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "gpus.json")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, bad := range []string{
		`{"rules":[{"host":"*","gpus":[{"model":"a100-pcie-4gb"}]}]}`,
		`{"rules":[{"host":"[","gpus":[]}]}`,
		`{"rules":[{"host":"*","gpus":[{"model":"a30-24gb","count":9}]}]}`,
		`{"rules":[{"hosts":"*"}]}`,
		`{"rules":[{"assignmentPolicy":"spread"}]}`,
		`{"models":{"x":{"name":"X","deviceId":"0x1"}}}`,
	} {
		if _, err := loadGPUConfig(write(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
	cfg, err := loadGPUConfig(write(`{"models":{"Fake-GPU":{"name":"Fake","deviceId":"0x9A1B","subDeviceId":1,"memoryMiB":1024}},
		"rules":[{"cluster":"DC0_C*","gpus":[{"model":"fake-gpu","count":2}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Rules[0]; r.GPUs[0].Count != 2 || r.AssignmentPolicy != "performance" || cfg.Models["fake-gpu"].DeviceID != 0x9A1B {
		t.Errorf("unexpected %+v", cfg)
	}
}
