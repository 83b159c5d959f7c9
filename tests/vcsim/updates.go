package main

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// customFieldsManager makes SetField visible to the property collector. vcsim 0.24 writes the
// value straight into the entity, so WaitForUpdatesEx never reports it, while real vCenter
// reports every customValue change (which `vmig serve` relies on to see agent documents).
//
// The manager is embedded by value: vcsim's property collector digs the mo type out of a
// wrapper through its first field, which must therefore be a struct, not a pointer.
type customFieldsManager struct {
	simulator.CustomFieldsManager
}

// SetField does what vcsim does, then announces the entity's new customValue.
func (m *customFieldsManager) SetField(ctx *simulator.Context, req *types.SetField) soap.HasFault {
	res := m.CustomFieldsManager.SetField(ctx, req)
	if res.Fault() != nil {
		return res
	}
	obj := simulator.Map.Get(req.Entity)
	if e, ok := obj.(mo.Entity); ok {
		simulator.Map.Update(obj, []types.PropertyChange{{Name: "customValue", Val: e.Entity().CustomValue}})
	}
	return res
}

// reportCustomFieldChanges swaps the registry's CustomFieldsManager for the wrapper above.
// SetCustomValue (which looks the manager up by its concrete type) is not used by vmig.
func reportCustomFieldChanges() {
	si := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	ref := si.Content.CustomFieldsManager
	if ref == nil {
		return
	}
	if cfm, ok := simulator.Map.Get(*ref).(*simulator.CustomFieldsManager); ok {
		simulator.Map.Put(&customFieldsManager{*cfm})
	}
}
