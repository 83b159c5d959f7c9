package main

import (
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// authorizationManager answers HasPrivilegeOnEntities from the roles and permissions set
// through AddAuthorizationRole and SetEntityPermissions. vcsim 0.24 keeps both but answers
// "granted" for every privilege, so a privilege preflight (`vmig setup --check-role`,
// `vmig-agent check-config`) could never be seen failing. Real vCenter resolves the caller's
// privileges on an object from the most specific permission for the user on the object or
// its ancestors (an ancestor's only when it propagates); that is what this does, for user
// principals (group membership lives in the identity source, which vcsim does not model).
//
// SetEntityPermissions also merges like vCenter (a principal's permission on the object is
// added or replaced; the others stay) instead of replacing the object's whole list.
//
// Embedded by value, like customFieldsManager (updates.go): the property collector reads
// roleList through the first field.
type authorizationManager struct {
	simulator.AuthorizationManager
}

func (m *authorizationManager) SetEntityPermissions(req *types.SetEntityPermissions) soap.HasFault {
	merged := m.direct(req.Entity)
	for _, p := range req.Permission {
		kept := merged[:0]
		for _, old := range merged {
			if old.Group != p.Group || !strings.EqualFold(old.Principal, p.Principal) {
				kept = append(kept, old)
			}
		}
		merged = append(kept, p)
	}
	return m.AuthorizationManager.SetEntityPermissions(&types.SetEntityPermissions{
		This: req.This, Entity: req.Entity, Permission: merged,
	})
}

func (m *authorizationManager) HasPrivilegeOnEntities(ctx *simulator.Context, req *types.HasPrivilegeOnEntities) soap.HasFault {
	body := &methods.HasPrivilegeOnEntitiesBody{}
	if ctx.Session == nil || req.SessionId != ctx.Session.Key {
		// vCenter answers about other sessions to a caller with Sessions.ValidateSession;
		// vmig only ever asks about its own.
		body.Fault_ = simulator.Fault("this simulator answers only about the caller's own session",
			&types.InvalidArgument{InvalidProperty: "sessionId"})
		return body
	}
	var out []types.EntityPrivilege
	for _, e := range req.Entity {
		held := m.effective(ctx.Session.UserName, e)
		ep := types.EntityPrivilege{Entity: e}
		for _, id := range req.PrivId {
			_, ok := held[id]
			ep.PrivAvailability = append(ep.PrivAvailability, types.PrivilegeAvailability{PrivId: id, IsGranted: ok})
		}
		out = append(out, ep)
	}
	body.Res = &types.HasPrivilegeOnEntitiesResponse{Returnval: out}
	return body
}

// adminRoleID is vCenter's (and vcsim's) system Admin role.
const adminRoleID = -1

// direct lists the permissions set on ref itself.
func (m *authorizationManager) direct(ref types.ManagedObjectReference) []types.Permission {
	res, ok := m.AuthorizationManager.RetrieveEntityPermissions(&types.RetrieveEntityPermissions{
		Entity: ref, Inherited: false,
	}).(*methods.RetrieveEntityPermissionsBody)
	if !ok || res.Res == nil {
		return nil
	}
	return append([]types.Permission(nil), res.Res.Returnval...)
}

// effective is the set of privileges user holds on ref: the role of the nearest permission
// for the user, walking from ref up to the root folder.
func (m *authorizationManager) effective(user string, ref types.ManagedObjectReference) map[string]struct{} {
	own := true
	for {
		obj, ok := simulator.Map.Get(ref).(mo.Entity)
		if !ok {
			return nil
		}
		for _, p := range m.direct(ref) {
			if !p.Group && strings.EqualFold(p.Principal, user) && (own || p.Propagate) {
				return m.rolePrivileges(p.RoleId)
			}
		}
		parent := obj.Entity().Parent
		if parent == nil {
			return nil
		}
		ref, own = *parent, false
	}
}

func (m *authorizationManager) rolePrivileges(id int32) map[string]struct{} {
	out := map[string]struct{}{}
	for _, role := range m.RoleList {
		if role.RoleId == id {
			for _, p := range role.Privilege {
				out[p] = struct{}{}
			}
		}
	}
	return out
}

// enforceRoles swaps the registry's AuthorizationManager for the wrapper above and gives
// admin (the harness's login) the Admin role on the root folder, as vCenter's
// administrator@vsphere.local has it: every other user holds only what a test grants.
func enforceRoles(admin string) {
	si := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	ref := si.Content.AuthorizationManager
	if ref == nil {
		return
	}
	if am, ok := simulator.Map.Get(*ref).(*simulator.AuthorizationManager); ok {
		wrapped := &authorizationManager{*am}
		simulator.Map.Put(wrapped)
		root := si.Content.RootFolder
		wrapped.SetEntityPermissions(&types.SetEntityPermissions{
			This: *ref, Entity: root,
			Permission: []types.Permission{{Entity: &root, Principal: admin, RoleId: adminRoleID, Propagate: true}},
		})
	}
}
