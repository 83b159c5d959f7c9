package main

// RebootHost_Task, which vcsim 0.24 does not implement, as far as vmig relies on it
// (`vmig rollout --reboot host`). What vCenter documents and this follows:
//
//   - Refused with InvalidState when `force` is false and the host is not in maintenance mode;
//     with `force` the host reboots regardless (vSphere Web Services API, HostSystem
//     RebootHost_Task: "InvalidState: if force is false and the host is not in maintenance
//     mode"; RebootHostRequestType.force).
//   - The task succeeds once the reboot is under way; the host then stops sending heartbeats,
//     which vCenter shows as runtime.connectionState `notResponding` ("VirtualCenter is not
//     receiving heartbeats from the server... changes to connected once heartbeats are
//     received again"; `disconnected` is for a host the user took down explicitly), until it
//     is back: `connected`, with a new runtime.bootTime. Maintenance mode survives a reboot.
//   - A host already rebooting is not connected: HostNotConnected, as for any host call.
//
// Not modelled: the VMs of a forced reboot (they would power off), vCenter events, and other
// methods refused while the host is down.
//
// The machine side of a reboot (GPUs reset, agent restarted) is the test harness's: with
// -reboot-dir, each reboot writes DIR/<host name> twice, "N down" when it starts and
// "N up BOOTTIME" when the host is back (N counts the host's reboots since the simulator
// started, BOOTTIME is RFC 3339), each by an atomic rename.
//
// How the call reaches this code: vcsim dispatches a method by reflection on the registry
// object of `_this`, and HostSystem objects must stay *simulator.HostSystem (vcsim asserts that
// type in a dozen places), so no method can be added to them. Instead every host gets a
// companion object (hostReboot) in the registry, and the /sdk handler below hands a
// RebootHost_Task request to vcsim with `_this` naming the host's companion. vcsim then
// does everything else as for its own methods: session check, -method-delay, task, faults,
// encoding. The handler is registered before the server starts, on host-qualified patterns
// ("127.0.0.1/sdk"), which net/http's ServeMux prefers over vcsim's own "/sdk".

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// companionType is the managed object type of the hosts' companions. A type of its own,
// because vcsim walks the registry's HostSystem objects in places and takes each for a host.
const companionType = "VmigHostReboot"

// companionRef is host id's companion: an id of its own too, because vcsim's Fetch on a
// ManagedEntity looks objects up by id alone.
func companionRef(id string) types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: companionType, Value: "vmig-reboot-" + id}
}

// rebooter holds what every host's reboot shares.
type rebooter struct {
	svc      *simulator.Service
	downtime time.Duration
	dir      string // "" = announce nothing

	mu    sync.Mutex
	boots map[string]int // reboots per host id
}

// hostReboot is a host's companion object: only the reboot method, on the host's behalf.
// It is no mo.Entity, and its type and id are its own, so inventory walks and lookups by
// id never take it for the host. The embedded mo type comes first because some vcsim code
// (SearchIndex) digs the mo type out of every registry object and panics without one.
type hostReboot struct {
	mo.ExtensibleManagedObject
	host *simulator.HostSystem
	r    *rebooter
}

// RebootHostTask is RebootHost_Task on h.host (vcsim's dispatcher names task methods so).
func (h *hostReboot) RebootHostTask(req *types.RebootHost_Task) soap.HasFault {
	body := &methods.RebootHost_TaskBody{}
	var refused types.BaseMethodFault
	var msg string
	simulator.Map.WithLock(h.host, func() {
		rt := &h.host.Runtime
		switch {
		case rt.ConnectionState != types.HostSystemConnectionStateConnected:
			msg = fmt.Sprintf("host %s is %s", h.host.Name, rt.ConnectionState)
			refused = &types.HostNotConnected{}
		case !req.Force && !rt.InMaintenanceMode:
			msg = fmt.Sprintf("host %s is not in maintenance mode", h.host.Name)
			refused = &types.InvalidState{}
		}
	})
	if refused != nil {
		body.Fault_ = simulator.Fault(msg, refused)
		return body
	}
	task := simulator.CreateTask(h.host, "rebootHost", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		h.r.down(h.host)
		time.AfterFunc(h.r.downtime, func() { h.r.up(h.host) })
		return nil, nil
	})
	body.Res = &types.RebootHost_TaskResponse{Returnval: task.Run()}
	return body
}

// down: the host stops answering vCenter.
func (r *rebooter) down(h *simulator.HostSystem) {
	r.mu.Lock()
	r.boots[h.Self.Value]++
	n := r.boots[h.Self.Value]
	r.mu.Unlock()
	setConnection(h, types.HostSystemConnectionStateNotResponding, nil)
	r.announce(h.Name, fmt.Sprintf("%d down\n", n))
}

// up: the host is back, booted now.
func (r *rebooter) up(h *simulator.HostSystem) {
	r.mu.Lock()
	n := r.boots[h.Self.Value]
	r.mu.Unlock()
	now := time.Now()
	setConnection(h, types.HostSystemConnectionStateConnected, &now)
	r.announce(h.Name, fmt.Sprintf("%d up %s\n", n, now.UTC().Format(time.RFC3339Nano)))
}

// setConnection changes the host's runtime under its lock and tells the property collector
// (WaitForUpdatesEx clients see the change, as with vCenter).
func setConnection(h *simulator.HostSystem, state types.HostSystemConnectionState, boot *time.Time) {
	simulator.Map.WithLock(h, func() {
		changes := []types.PropertyChange{{Name: "runtime.connectionState", Val: state}}
		if boot != nil {
			changes = append(changes, types.PropertyChange{Name: "runtime.bootTime", Val: *boot})
		}
		h.Runtime.ConnectionState = state
		if boot != nil {
			h.Runtime.BootTime = boot
		}
		simulator.Map.Update(h, changes)
	})
}

// announce writes DIR/<host name> by rename, so a reader never sees half a line. A failure
// is logged, not fatal: the reboot itself happened in the simulator.
func (r *rebooter) announce(host, line string) {
	if r.dir == "" {
		return
	}
	path := filepath.Join(r.dir, url.PathEscape(host))
	tmp := path + ".tmp"
	if err := ioutil.WriteFile(tmp, []byte(line), 0o644); err != nil {
		log.Printf("-reboot-dir: %v", err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		log.Printf("-reboot-dir: %v", err)
	}
}

// installReboot gives every host a companion and registers the /sdk handler for the names
// a client may use for this server (the listen IP and localhost). Call it after the
// inventory is built and before the server starts.
func installReboot(svc *simulator.Service, listenIP string, downtime time.Duration, dir string) {
	r := &rebooter{svc: svc, downtime: downtime, dir: dir, boots: map[string]int{}}
	for _, h := range hostsByName() {
		simulator.Map.Put(&hostReboot{
			ExtensibleManagedObject: mo.ExtensibleManagedObject{Self: companionRef(h.Self.Value)},
			host:                    h,
			r:                       r,
		})
	}
	if svc.ServeMux == nil {
		svc.ServeMux = http.NewServeMux()
	}
	names := map[string]bool{listenIP: true, "localhost": true}
	for name := range names {
		svc.ServeMux.HandleFunc(name+"/sdk", r.serveSDK)
	}
}

// serveSDK routes RebootHost_Task to the host's companion and hands every request to vcsim.
func (r *rebooter) serveSDK(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodPost {
		body, err := ioutil.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if routed, ok := routeReboot(body, hasCompanion); ok {
			body = routed
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	r.svc.ServeSDK(w, req)
}

// hasCompanion: whether host id has a companion (a host added after the start has none, and
// vcsim then answers its reboot as before: MethodNotFound).
func hasCompanion(id string) bool {
	return simulator.Map.Get(companionRef(id)) != nil
}

// routeReboot returns body with the `_this` element of a RebootHost_Task call on a
// HostSystem that has a companion replaced by one naming the companion, leaving every other
// byte as it was. ok is false for any other request (and for one this cannot read, which
// vcsim then answers itself).
func routeReboot(body []byte, companion func(id string) bool) (routed []byte, ok bool) {
	if !bytes.Contains(body, []byte("RebootHost_Task")) {
		return nil, false
	}
	dec := xml.NewDecoder(bytes.NewReader(body))
	var path []string
	for {
		from := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			if len(path) != 4 || path[1] != "Body" || path[2] != "RebootHost_Task" || t.Name.Local != "_this" {
				continue
			}
			// <_this type="HostSystem">ID</_this>, nothing else. The text is read before
			// the next token: the decoder reuses its bytes.
			text, err := dec.Token()
			value, isText := text.(xml.CharData)
			id := strings.TrimSpace(string(value))
			if err != nil || !isText || attr(t, "type") != "HostSystem" {
				return nil, false
			}
			end, err := dec.Token()
			if _, isEnd := end.(xml.EndElement); err != nil || !isEnd || !companion(id) {
				return nil, false
			}
			var this bytes.Buffer
			this.WriteString(`<_this type="` + companionType + `">`)
			_ = xml.EscapeText(&this, []byte(companionRef(id).Value))
			this.WriteString(`</_this>`)
			out := append([]byte{}, body[:from]...)
			out = append(out, this.Bytes()...)
			return append(out, body[dec.InputOffset():]...), true
		case xml.EndElement:
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
		}
	}
}

func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}
