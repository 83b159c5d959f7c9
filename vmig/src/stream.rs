//! The report, streamed: [`StreamedReport`] serialises exactly what
//! `analyse(inventories, now).report(scope)` would, one compute resource at a time, so that
//! `vmig report --format json` at vCenter's maximum inventory stays within its memory budget
//! (docs/performance.md).

use std::cell::RefCell;
use std::collections::BTreeMap;

use mig::defrag::StrandedTotals;
use serde::ser::{Error as _, SerializeSeq, SerializeStruct};
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::analysis::{analyse_host, out_of_scope_warnings, reservations_by_host};
use crate::inventory::VcenterInventory;
use crate::report::{
    ClusterSink, ClusterView, FlaggedHost, REPORT_SCHEMA, ScopeView, VgpuVmView, VmPlace,
    capacity_list, cluster_view, vgpu_vm_view,
};
use crate::reservation::HeldReservation;
use crate::times::format_time;

/// What a [`StreamedReport`] accumulates while its clusters are written.
#[derive(Default)]
struct StreamState {
    total: BTreeMap<(String, String), u32>,
    stranded: StrandedTotals,
    vgpu_vms: Vec<VgpuVmView>,
    flagged: Vec<FlaggedHost>,
    warnings: Vec<String>,
    written: bool,
}

/// The [`Report`] of some inventories, analysed and serialised one compute resource at a
/// time: each cluster's hosts are analysed, turned into their view, written and dropped
/// before the next cluster is touched, so neither the whole [`Analysis`] nor the whole
/// [`Report`] is ever in memory (at vCenter's maximum inventory the report model alone is
/// tens of MB). It serialises to exactly what `analyse(inventories, now).report(scope)`
/// does, field for field and in the same order; the fields that summarise everything
/// (`capacity`, `vgpu_vms`, `flagged_hosts`, `warnings`) come after `vcenters` in the
/// schema, so they are complete when they are written.
///
/// It can be serialised once: serialising consumes the inventories (a second attempt is an
/// error).
///
/// [`Report`]: crate::report::Report
/// [`Analysis`]: crate::analysis::Analysis
pub struct StreamedReport {
    inventories: RefCell<Vec<VcenterInventory>>,
    now: OffsetDateTime,
    scope: ScopeView,
    state: RefCell<StreamState>,
}

impl std::fmt::Debug for StreamedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedReport")
            .field("vcenters", &self.inventories.borrow().len())
            .field("now", &self.now)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl StreamedReport {
    /// The report of `inventories` analysed at `now`, with `scope` as its filters.
    pub fn new(inventories: Vec<VcenterInventory>, now: OffsetDateTime, scope: ScopeView) -> Self {
        StreamedReport {
            inventories: RefCell::new(inventories),
            now,
            scope,
            state: RefCell::new(StreamState::default()),
        }
    }
}

impl Serialize for StreamedReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if std::mem::replace(&mut self.state.borrow_mut().written, true) {
            return Err(S::Error::custom(
                "a streamed report can be written only once (its inventories are consumed)",
            ));
        }
        let mut st = s.serialize_struct("Report", 9)?;
        st.serialize_field("schema", REPORT_SCHEMA)?;
        st.serialize_field("generated_at", &format_time(self.now))?;
        st.serialize_field("scope", &self.scope)?;
        st.serialize_field("vcenters", &StreamVcenters(self))?;
        let state = self.state.replace(StreamState {
            written: true,
            ..StreamState::default()
        });
        st.serialize_field("capacity", &capacity_list(state.total))?;
        st.serialize_field("stranded", &state.stranded)?;
        st.serialize_field("vgpu_vms", &state.vgpu_vms)?;
        st.serialize_field("flagged_hosts", &state.flagged)?;
        st.serialize_field("warnings", &state.warnings)?;
        st.end()
    }
}

struct StreamVcenters<'a>(&'a StreamedReport);

impl Serialize for StreamVcenters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0.inventories.borrow().len();
        let mut seq = s.serialize_seq(Some(n))?;
        for vi in 0..n {
            seq.serialize_element(&StreamVcenter { r: self.0, vi })?;
        }
        seq.end()
    }
}

struct StreamVcenter<'a> {
    r: &'a StreamedReport,
    vi: usize,
}

impl Serialize for StreamVcenter<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (name, url, product, n_dcs, by_host) = {
            let invs = self.r.inventories.borrow();
            let inv = &invs[self.vi];
            let by_host = reservations_by_host(inv, &mut self.r.state.borrow_mut().warnings);
            (
                inv.name.clone(),
                inv.url.clone(),
                inv.product.clone(),
                inv.datacenters.len(),
                by_host,
            )
        };
        let vc = StreamCtx {
            r: self.r,
            vi: self.vi,
            name: &name,
            by_host: RefCell::new(by_host),
            total: RefCell::new(BTreeMap::new()),
        };
        let mut st = s.serialize_struct("VcenterView", 5)?;
        st.serialize_field("name", &name)?;
        st.serialize_field("url", &url)?;
        st.serialize_field("product", &product)?;
        st.serialize_field("datacenters", &StreamDatacenters { vc: &vc, n: n_dcs })?;
        let vc_total = vc.total.take();
        {
            let mut state = self.r.state.borrow_mut();
            out_of_scope_warnings(vc.by_host.take(), &mut state.warnings);
            for (k, n) in &vc_total {
                *state.total.entry(k.clone()).or_default() += n;
            }
        }
        st.serialize_field("capacity", &capacity_list(vc_total))?;
        st.end()
    }
}

/// One vCenter being streamed.
struct StreamCtx<'a> {
    r: &'a StreamedReport,
    vi: usize,
    name: &'a str,
    by_host: RefCell<BTreeMap<String, Vec<HeldReservation>>>,
    total: RefCell<BTreeMap<(String, String), u32>>,
}

struct StreamDatacenters<'a> {
    vc: &'a StreamCtx<'a>,
    n: usize,
}

impl Serialize for StreamDatacenters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.n))?;
        for di in 0..self.n {
            let (name, n) = {
                let invs = self.vc.r.inventories.borrow();
                let dc = &invs[self.vc.vi].datacenters[di];
                (dc.name.clone(), dc.compute.len())
            };
            seq.serialize_element(&StreamDatacenter {
                vc: self.vc,
                di,
                name: &name,
                n,
            })?;
        }
        seq.end()
    }
}

struct StreamDatacenter<'a> {
    vc: &'a StreamCtx<'a>,
    di: usize,
    name: &'a str,
    n: usize,
}

impl Serialize for StreamDatacenter<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("DatacenterView", 2)?;
        st.serialize_field("name", self.name)?;
        st.serialize_field("clusters", &StreamClusters(self))?;
        st.end()
    }
}

struct StreamClusters<'a>(&'a StreamDatacenter<'a>);

impl Serialize for StreamClusters<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let dc = self.0;
        let mut seq = s.serialize_seq(Some(dc.n))?;
        for ci in 0..dc.n {
            let view = dc.cluster(ci);
            seq.serialize_element(&view)?;
        }
        seq.end()
    }
}

impl StreamDatacenter<'_> {
    /// Analyses compute resource `ci` and returns its view; its hosts and VMs leave the
    /// inventory here.
    fn cluster(&self, ci: usize) -> ClusterView {
        let vc = self.vc;
        let r = vc.r;
        let (hosts, vms) = {
            let mut invs = r.inventories.borrow_mut();
            let cr = &mut invs[vc.vi].datacenters[self.di].compute[ci];
            (std::mem::take(&mut cr.hosts), std::mem::take(&mut cr.vms))
        };
        let invs = r.inventories.borrow();
        let cr = &invs[vc.vi].datacenters[self.di].compute[ci];
        let mut state = r.state.borrow_mut();
        let state = &mut *state;
        let mut analysed = Vec::with_capacity(hosts.len());
        {
            let mut by_host = vc.by_host.borrow_mut();
            for host in &hosts {
                let held = by_host.remove(host.moref.value()).unwrap_or_default();
                analysed.push(analyse_host(
                    vc.vi,
                    self.name,
                    cr,
                    host,
                    held,
                    invs[vc.vi].judged_at(r.now),
                    &mut state.warnings,
                ));
            }
        }
        drop(hosts);
        let mut vc_total = vc.total.borrow_mut();
        let mut sink = ClusterSink {
            vcenter: vc.name,
            datacenter: self.name,
            vc_total: &mut vc_total,
            flagged: &mut state.flagged,
        };
        let view = cluster_view(&cr.name, cr.is_cluster, &analysed, &mut sink);
        state.stranded.merge(view.stranded);
        for vm in &vms {
            // A VM runs on a host of its own compute resource.
            let host = vm
                .host
                .as_ref()
                .and_then(|r| analysed.iter().find(|h| &h.host.moref == r));
            let place = VmPlace {
                vcenter: vc.name,
                datacenter: self.name,
                cluster: &cr.name,
                host,
                host_name: vm
                    .host
                    .as_ref()
                    .map(|r| host.map_or_else(|| r.value().to_string(), |h| h.host.name.clone())),
            };
            state.vgpu_vms.extend(vgpu_vm_view(vm, place));
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::analyse;
    use crate::reservation::Reservation;
    use crate::times::parse_time;
    use mig::MigState;
    use mig::report::{GpuReport, HostReport, MigModeReport};

    use crate::fuzzing::host;
    use crate::inventory::{
        ComputeInventory, DatacenterInventory, FieldKeys, VcenterInventory, VmInfo,
    };
    use mig::report::{CiReport, GiReport, SCHEMA_V1};
    use mig::{ComputeInstanceId, GpuModel, Placement};
    use vcenter_client::{DeviceKey, MoRef, PowerState, VgpuDevice, VgpuProfile};

    const A100: &str = "a100-pcie-40gb";

    /// A document for host `n`: one A100 with a 3g.20gb GI occupied by `occupant`.
    fn document(n: u32, observed_at: &str, occupant: &str) -> String {
        let model = GpuModel::by_key(A100).unwrap();
        let p = model.gi_profile_by_name("3g.20gb").unwrap();
        let mut state = MigState::new(model);
        let gi = state.create_gi(p.id, Some(Placement::new(4, 4))).unwrap();
        HostReport {
            schema: SCHEMA_V1.to_string(),
            agent_version: "0.1.0".into(),
            host_uuid: format!("uuid-{n}"),
            generation: 1,
            observed_at: observed_at.into(),
            heartbeat_interval_s: 300,
            usage: None,
            gpus: vec![GpuReport {
                sliced_types: Vec::new(),
                timesliced: None,
                index: 0,
                uuid: format!("GPU-{n}"),
                name: model.nvml_name.into(),
                pci_bus_id: "00000000:3B:00.0".into(),
                model: Some(A100.into()),
                mig_mode: Some(MigModeReport {
                    current: true,
                    pending: true,
                }),
                gpu_instances: vec![GiReport {
                    vgpus: Vec::new(),
                    gi_id: gi,
                    profile_id: p.id,
                    profile: p.name.into(),
                    placement: Placement::new(4, 4),
                    compute_instances: vec![CiReport {
                        ci_id: ComputeInstanceId(0),
                        profile_id: None,
                        profile: "3c.3g.20gb".into(),
                        uuid: format!("MIG-{n}"),
                    }],
                    in_use: true,
                    vm: Some(occupant.into()),
                    vgpu_type: Some("grid_a100-3-20c".into()),
                    processes: vec![],
                }],
                free: Default::default(),
                largest_placeable: None,
                fragmentation: 0.0,
                placeable_vgpu_types: vec![],
                error: None,
                nvml_free: None,
                layout_state: None,
                geometry: None,
            }],
        }
        .to_json()
    }

    /// A running VM: the fuzz fixture's VM, powered on.
    fn vm(n: u32, host: u32) -> VmInfo {
        VmInfo {
            power_state: Some(PowerState::PoweredOn),
            ..crate::fuzzing::vm(n, host, None)
        }
    }

    /// Two clusters and a standalone host: fresh, stale, missing and unreadable reports, a
    /// VM running a vGPU by name and one by UUID, a powered-off VM with a vGPU device, a
    /// reservation across clusters, one out of scope and one unreadable.
    fn inventory(now: OffsetDateTime) -> VcenterInventory {
        let fresh = format_time(now - time::Duration::minutes(2));
        let stale = format_time(now - time::Duration::hours(3));
        let reservation = |host: &str| {
            Reservation {
                schema: crate::reservation::RESERVATION_SCHEMA.into(),
                host: host.into(),
                host_name: "esx?".into(),
                gpu_uuid: "GPU-3".into(),
                vgpu_type: "grid_a100-1-5c".into(),
                profile: "1g.5gb".into(),
                profile_id: GpuModel::by_key(A100)
                    .unwrap()
                    .gi_profile_by_name("1g.5gb")
                    .unwrap()
                    .id,
                placement: Placement::new(0, 1),
                reserved_at: fresh.clone(),
                by: "admin@vc".into(),
                memory_locked_before: None,
                token: None,
                step: None,
                task: None,
                from_host: None,
                expires_at: None,
                vm_uuid: None,
                more: Vec::new(),
                time_sliced: false,
            }
            .to_json()
        };
        let mut vms_a = vec![vm(1, 1), vm(2, 1), vm(3, 2)];
        vms_a[1].reservation = Some(reservation("host-3"));
        vms_a[2].power_state = Some(PowerState::PoweredOff);
        vms_a[2].devices_read = true;
        vms_a[2].vgpus = vec![VgpuDevice {
            key: DeviceKey(13000),
            profile: VgpuProfile::new("grid_a100-3-20c").unwrap(),
            label: None,
            summary: None,
            controller_key: None,
            unit_number: None,
        }];
        let mut vms_b = vec![vm(4, 3), vm(5, 3), vm(6, 4)];
        vms_b[1].reservation = Some("{not json".into());
        vms_b[2].reservation = Some(reservation("host-99"));
        VcenterInventory {
            name: "vc1".into(),
            url: "https://vc1/sdk".into(),
            product: "VMware vCenter Server 8.0.3".into(),
            fields: FieldKeys::default(),
            server_time: None,
            datacenters: vec![DatacenterInventory {
                moref: MoRef::new("Datacenter", "dc-1"),
                name: "DC".into(),
                compute: vec![
                    ComputeInventory {
                        moref: MoRef::new("ClusterComputeResource", "c-1"),
                        name: "A".into(),
                        is_cluster: true,
                        hosts: vec![
                            host(1, Some(document(1, &fresh, "vm001"))),
                            host(2, Some(document(2, &stale, "nobody"))),
                        ],
                        vms: vms_a,
                    },
                    ComputeInventory {
                        moref: MoRef::new("ClusterComputeResource", "c-2"),
                        name: "B".into(),
                        is_cluster: true,
                        hosts: vec![
                            host(3, Some(document(3, &fresh, "4211-4"))),
                            host(4, Some("{broken".into())),
                        ],
                        vms: vms_b,
                    },
                    ComputeInventory {
                        moref: MoRef::new("ComputeResource", "s-1"),
                        name: "esx05".into(),
                        is_cluster: false,
                        hosts: vec![host(5, None)],
                        vms: vec![],
                    },
                ],
            }],
            requests: 0,
            objects: 0,
        }
    }

    #[test]
    fn streamed_report_is_the_report() {
        let now = parse_time("2026-11-26T14:02:11Z").unwrap();
        let scope = ScopeView {
            datacenter: None,
            cluster: Some("A".into()),
        };
        let mut second = inventory(now);
        second.name = "vc2".into();
        let invs = vec![inventory(now), second];
        let whole = analyse(invs.clone(), now).report(scope.clone());
        let expected = serde_json::to_string_pretty(&whole).unwrap();
        let streamed = StreamedReport::new(invs, now, scope);
        let got = serde_json::to_string_pretty(&streamed).unwrap();
        assert_eq!(got, expected);
        // The fixture exercises what the streaming must carry across clusters.
        assert_eq!(whole.vgpu_vms.len(), 2 * 5, "{:#?}", whole.vgpu_vms);
        assert_eq!(whole.flagged_hosts.len(), 2 * 3);
        assert!(
            whole
                .warnings
                .iter()
                .any(|w| w.contains("not in this report's scope"))
        );
        assert!(whole.warnings.iter().any(|w| w.contains("cannot be read")));
        assert!(
            serde_json::to_string(&streamed).is_err(),
            "a streamed report is written once"
        );
    }
}
