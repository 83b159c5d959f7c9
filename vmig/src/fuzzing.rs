//! Entry points for the cargo-fuzz targets in `vmig/fuzz/` and the stable seed-corpus test
//! (`tests/fuzz_seeds.rs`): outside input all the way to what the admin reads. A host's
//! `vmig.mig` document and a VM's `vmig.reservation` are written by whoever holds the
//! custom-attribute privilege, so whatever their bytes, analysis and every renderer (table,
//! CSV, HTML, JSON whole and streamed) must finish without panicking, in bounded output,
//! and the other host of the inventory must keep its own, good, status.
#![doc(hidden)]

use time::OffsetDateTime;
use vcenter_client::{HostRef, MoRef, PowerState, VmRef};

use crate::analysis::{AgentStatus, analyse};
use crate::inventory::{
    ComputeInventory, DatacenterInventory, FieldKeys, HostInfo, VcenterInventory, VmInfo,
};
use crate::render::{self, Format};
use crate::report::ScopeView;
use crate::reservation::{RESERVATION_SCHEMA, Reservation, Step};
use crate::stream::StreamedReport;
use crate::times::parse_time;

/// A valid document (one A100, a 3g.20gb GI in use by `render-01`), observed at 14:02:11.
pub const GOOD_DOCUMENT: &str = include_str!("../fuzz/seeds/report/a100-good.json");

/// No rendering of a two-host inventory comes near this; more means something grew with a
/// number from the input.
const MAX_OUTPUT_BYTES: usize = 4 << 20;

/// The time the reports are judged at: three minutes after the good document.
pub fn judged_at() -> OffsetDateTime {
    now()
}

/// The two-host inventory with `document` on host-1 and the good reservation.
pub fn inventory_for_test(document: &str) -> VcenterInventory {
    inventory(document, &good_reservation())
}

fn now() -> OffsetDateTime {
    parse_time("2026-11-26T14:05:11Z").unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A reservation on host-1's A100 that fits the good document.
pub fn good_reservation() -> String {
    Reservation {
        schema: RESERVATION_SCHEMA.into(),
        host: "host-1".into(),
        host_name: "esx01".into(),
        gpu_uuid: "GPU-5ba4d6e8-0b8d-4f0e-9c62-2a51c3a4e0f1".into(),
        vgpu_type: "grid_a100-1-5c".into(),
        profile: "1g.5gb".into(),
        profile_id: mig::GiProfileId(19),
        placement: mig::Placement::new(0, 1),
        reserved_at: "2026-11-26T14:00:00Z".into(),
        by: "admin@vc".into(),
        memory_locked_before: None,
        token: Some(7),
        step: Some(Step::Done),
        task: None,
        from_host: None,
        expires_at: Some("2026-12-03T14:00:00Z".into()),
        vm_uuid: None,
        more: Vec::new(),
        time_sliced: false,
    }
    .to_json()
}

/// Host `host-N` (`escNN`), connected, offering two A100 vGPU types, with `document`.
pub fn host(n: u32, document: Option<String>) -> HostInfo {
    HostInfo {
        moref: HostRef::new(format!("host-{n}")),
        name: format!("esx{n:02}"),
        connection_state: Some("connected".into()),
        bios_uuid: None,
        vgpu_types: vec!["grid_a100-3-20c".into(), "grid_a100-1-5c".into()],
        graphics: vec![],
        document,
    }
}

/// Powered-off VM `vm-N` (`vmNNN`, BIOS UUID `4211-N`) on `host-H`, devices not read.
pub fn vm(n: u32, host: u32, reservation: Option<String>) -> VmInfo {
    VmInfo {
        moref: VmRef::new(format!("vm-{n}")),
        name: format!("vm{n:03}"),
        uuid: Some(format!("4211-{n}")),
        host: Some(HostRef::new(format!("host-{host}"))),
        power_state: Some(PowerState::PoweredOff),
        memory_locked: None,
        reservation,
        vgpus: vec![],
        devices_read: false,
    }
}

/// One cluster: host-1 with `document`, host-2 with the good document; VM 1 on host-1 holds
/// `reservation`, VM 2 on host-2 the good one moved there.
fn inventory(document: &str, reservation: &str) -> VcenterInventory {
    let on_host_2 = good_reservation().replace("\"host-1\"", "\"host-2\"");
    VcenterInventory {
        name: "vc1".into(),
        url: "https://vc1/sdk".into(),
        product: "VMware vCenter Server 8.0.3".into(),
        fields: FieldKeys::default(),
        server_time: None,
        datacenters: vec![DatacenterInventory {
            moref: MoRef::new("Datacenter", "dc-1"),
            name: "DC".into(),
            compute: vec![ComputeInventory {
                moref: MoRef::new("ClusterComputeResource", "c-1"),
                name: "A".into(),
                is_cluster: true,
                hosts: vec![
                    host(1, Some(document.to_string())),
                    host(2, Some(GOOD_DOCUMENT.to_string())),
                ],
                vms: vec![
                    vm(1, 1, Some(reservation.to_string())),
                    vm(2, 2, Some(on_host_2)),
                ],
            }],
        }],
        requests: 0,
        objects: 0,
    }
}

/// Analyses and renders the inventory in every format; checks the good host stays good.
fn analyse_and_render(inv: VcenterInventory) {
    let analysis = analyse(vec![inv.clone()], now());
    let good = analysis
        .hosts
        .iter()
        .find(|h| h.host.name == "esx02")
        .map(|h| h.status);
    assert_eq!(good, Some(AgentStatus::Ok), "the other host was affected");
    let report = analysis.report(ScopeView::default());
    let mut whole_json = Vec::new();
    for format in [Format::Table, Format::Csv, Format::Html, Format::Json] {
        let mut out = Vec::new();
        if let Err(e) = render::render(&report, format, &mut out) {
            panic!("{format:?} rendering failed: {e}");
        }
        assert!(
            out.len() < MAX_OUTPUT_BYTES,
            "{format:?} output of {} bytes",
            out.len()
        );
        if format == Format::Table {
            assert!(
                !out.iter().any(|b| *b == 0x1b || *b == b'\r'),
                "a control character reached the table"
            );
        }
        if format == Format::Json {
            whole_json = out;
        }
    }
    let mut streamed = Vec::new();
    let r = StreamedReport::new(vec![inv], now(), ScopeView::default());
    if let Err(e) = render::json::render_streamed(&r, &mut streamed) {
        panic!("streamed JSON failed: {e}");
    }
    // Times differ only in `generated_at`, which both take from `now()`.
    assert!(
        streamed == whole_json,
        "streamed JSON differs from the whole report's"
    );
}

/// `data` as host-1's `vmig.mig` document.
pub fn report(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    analyse_and_render(inventory(text, &good_reservation()));
}

/// `data` as VM 1's `vmig.reservation` on host-1 (which has the good document).
pub fn reservation(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    analyse_and_render(inventory(GOOD_DOCUMENT, text));
}
