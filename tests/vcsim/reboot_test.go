package main

import (
	"context"
	"fmt"
	"io/ioutil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

const rebootCall = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><operationID>op-1</operationID></soapenv:Header>
<soapenv:Body><RebootHost_Task xmlns="urn:vim25"><_this type="HostSystem">host-21</_this><force>false</force></RebootHost_Task></soapenv:Body></soapenv:Envelope>`

// Only a RebootHost_Task's `_this` changes, byte for byte; everything else passes untouched.
func TestRouteReboot(t *testing.T) {
	known := func(id string) bool { return id == "host-21" }
	got, ok := routeReboot([]byte(rebootCall), known)
	want := strings.Replace(rebootCall, `<_this type="HostSystem">host-21`, `<_this type="VmigHostReboot">vmig-reboot-host-21`, 1)
	if !ok || string(got) != want {
		t.Fatalf("routed %v:\n%s", ok, got)
	}
	for name, body := range map[string]string{
		"another host":   strings.Replace(rebootCall, "host-21", "host-22", 1),
		"another type":   strings.Replace(rebootCall, `type="HostSystem"`, `type="VirtualMachine"`, 1),
		"another method": strings.Replace(rebootCall, "RebootHost_Task", "ShutdownHost_Task", -1),
		"the companion":  strings.Replace(rebootCall, `type="HostSystem"`, `type="VmigHostReboot"`, 1),
		"not a plain id": strings.Replace(rebootCall, "host-21<", "host-21<!-- x --><", 1),
		"not XML":        "RebootHost_Task <",
		// Named as a value, not called: Body > RebootHost_Task > _this only.
		"a name in a value": `<Envelope><Body><SetField><value>RebootHost_Task</value><_this type="HostSystem">host-21</_this></SetField></Body></Envelope>`,
	} {
		if got, ok := routeReboot([]byte(body), known); ok {
			t.Errorf("%s: routed to\n%s", name, got)
		}
	}
}

// RebootHost_Task through the SOAP endpoint, as vmig calls it: refused outside maintenance
// mode, then a task that succeeds and a host that is notResponding for the downtime, then
// connected with a new boot time, still in maintenance mode; the harness's file follows.
func TestRebootHost(t *testing.T) {
	m := simulator.VPX()
	defer m.Remove()
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	downtime := 300 * time.Millisecond
	installReboot(m.Service, "127.0.0.1", downtime, dir)
	m.Service.Listen = &url.URL{Host: "127.0.0.1:0"}
	s := m.Service.NewServer()
	defer s.Close()

	ctx := context.Background()
	sc := soap.NewClient(s.URL, true)
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		t.Fatal(err)
	}
	h := hostsByName()["DC0_C0_H0"]
	ref := h.Reference()
	reboot := func(force bool) (types.ManagedObjectReference, error) {
		res, err := methods.RebootHost_Task(ctx, c, &types.RebootHost_Task{This: ref, Force: force})
		if err != nil {
			return types.ManagedObjectReference{}, err
		}
		return res.Returnval, nil
	}
	// The fault's type, as the client decoded it (a value, e.g. types.InvalidState).
	faultOf := func(err error) string {
		if err == nil || !soap.IsSoapFault(err) {
			t.Fatalf("want a SOAP fault, got %v", err)
		}
		return fmt.Sprintf("%T", soap.ToSoapFault(err).VimFault())
	}

	if f := faultOf(func() error { _, err := reboot(false); return err }()); f != "types.NotAuthenticated" {
		t.Errorf("a call without a session: %s", f)
	}
	if err := session.NewManager(c).Login(ctx, s.URL.User); err != nil {
		t.Fatal(err)
	}
	// The companions stay out of vcsim's own walks over hosts (the agents find their host so).
	vmFalse := false
	found, err := object.NewSearchIndex(c).FindByUuid(ctx, nil, h.Summary.Hardware.Uuid, vmFalse, nil)
	if err != nil || found == nil || found.Reference() != ref {
		t.Errorf("FindByUuid: %v %v", found, err)
	}
	if f := faultOf(func() error { _, err := reboot(false); return err }()); f != "types.InvalidState" {
		t.Errorf("not in maintenance mode: %s, want InvalidState", f)
	}
	host := object.NewHostSystem(c, ref)
	enter, err := host.EnterMaintenanceMode(ctx, 0, false, nil)
	if err == nil {
		err = enter.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}

	before := runtimeOf(h)
	task, err := reboot(false)
	if err != nil {
		t.Fatal(err)
	}
	if err := object.NewTask(c, task).Wait(ctx); err != nil {
		t.Fatalf("reboot task: %v", err)
	}
	if rt := runtimeOf(h); rt.ConnectionState != types.HostSystemConnectionStateNotResponding {
		t.Errorf("while rebooting: %s", rt.ConnectionState)
	}
	if f := faultOf(func() error { _, err := reboot(true); return err }()); f != "types.HostNotConnected" {
		t.Errorf("a host that is rebooting: %s, want HostNotConnected", f)
	}
	file := filepath.Join(dir, "DC0_C0_H0")
	if b, _ := ioutil.ReadFile(file); string(b) != "1 down\n" {
		t.Errorf("while rebooting the file says %q", b)
	}

	deadline := time.Now().Add(10 * time.Second)
	for runtimeOf(h).ConnectionState != types.HostSystemConnectionStateConnected {
		if time.Now().After(deadline) {
			t.Fatal("the host did not come back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	after := runtimeOf(h)
	if !after.BootTime.After(*before.BootTime) || !after.InMaintenanceMode {
		t.Errorf("after the reboot: boot time %v (before %v), maintenance mode %v", after.BootTime, before.BootTime, after.InMaintenanceMode)
	}
	b, _ := ioutil.ReadFile(file)
	if want := "1 up " + after.BootTime.UTC().Format(time.RFC3339Nano) + "\n"; string(b) != want {
		t.Errorf("file %q, want %q", b, want)
	}

	// force: a host out of maintenance mode reboots too (the second reboot counts 2).
	exit, err := host.ExitMaintenanceMode(ctx, 0)
	if err == nil {
		err = exit.Wait(ctx)
	}
	if err == nil {
		_, err = reboot(true)
	}
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := ioutil.ReadFile(file); string(b) != "2 down\n" {
		t.Errorf("forced reboot: the file says %q", b)
	}
	time.Sleep(downtime + 200*time.Millisecond)
}

// runtimeOf copies h's runtime under the host's lock.
func runtimeOf(h *simulator.HostSystem) types.HostRuntimeInfo {
	var rt types.HostRuntimeInfo
	simulator.Map.WithLock(h, func() { rt = h.Runtime })
	return rt
}
