//! Slice reservations: what `vmig assign` records on a VM (custom attribute
//! `vmig.reservation`) so that a MIG slice promised to a powered-off VM is not promised again
//! before the VM runs and the host's agent reports the slice in use.
//!
//! vSphere creates a MIG-backed vGPU's GPU instance only at power-on, on a GPU and placement
//! of its own choosing, so a reservation names the host, GPU and placement vmig planned, and
//! it counts as occupying that placement **whenever the host's agent does not report a GI in
//! use by that VM** (before the first power-on, and again after a power-off). If the planned
//! placement has been taken meanwhile, the reservation is moved to the best free placement of
//! the same profile on that host; if none is left it is reported as unplaceable.
//! `vmig unassign` clears it (the value becomes empty; vCenter has no "unset").
//!
//! Since issue 15 a reservation also carries the fencing token of the host lock it was
//! written under (`token`), the journal of the `assign` that wrote it (`step`, `task`,
//! `from_host`; `vmig repair` reads it) and an expiry (`expires_at`, vCenter time). All new
//! fields are optional, so reservations written before read as finished, fence-less and
//! never expiring. Rules for readers ([`apply`]):
//! - an expired reservation is not counted ([`ReservationStatus::Expired`]);
//! - when two reservations claim overlapping placements on one GPU, the one with the higher
//!   token wins and the lower is [`ReservationStatus::Superseded`], not counted: the lower
//!   one can only be the late write of a holder whose lock was broken (see `lock`).

pub mod validate;

use serde::{Deserialize, Serialize};

use mig::report::HostReport;
use mig::vgpu_slots::{self, GpuSlots};
use mig::{GiProfileId, GpuModel, MigState, Placement};

/// Schema name of the reservation document.
pub const RESERVATION_SCHEMA: &str = "vmig.reservation/v1";

/// The `vmig.reservation` value on a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Always [`RESERVATION_SCHEMA`].
    pub schema: String,
    /// Managed object id of the host (`host-21`).
    pub host: String,
    /// The host's name when the reservation was made.
    pub host_name: String,
    /// `GPU-…` UUID of the planned GPU.
    pub gpu_uuid: String,
    /// The vGPU type assigned, as the host spells it.
    pub vgpu_type: String,
    /// GI profile name backing it, e.g. `3g.20gb`.
    pub profile: String,
    /// GI profile id on that GPU model.
    pub profile_id: GiProfileId,
    /// Planned placement in memory slices.
    pub placement: Placement,
    /// RFC 3339 UTC time the reservation was written.
    pub reserved_at: String,
    /// Who made it (`user@vcenter`).
    pub by: String,
    /// `config.memoryReservationLockedToMax` before `assign` set it, restored by `unassign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_locked_before: Option<bool>,
    /// Fencing token: the key of the host lock it was written under (higher wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<i64>,
    /// How far the `assign` that wrote it got; none (older vmig) means finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<Step>,
    /// The vCenter task of the step under way (`task-123`), when one was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Managed object id of the host the VM was on before `assign` (to undo a move).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_host: Option<String>,
    /// RFC 3339 vCenter time after which it is no longer counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The VM's BIOS UUID (what an agent may report instead of the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vm_uuid: Option<String>,
    /// Issue 18: the VM's other vGPUs (`assign` with several `--profile`), on the same host,
    /// each with its own GPU and placement. The first vGPU stays in the fields above, so a
    /// reader that knows only those still sees (and counts) one valid placement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more: Vec<MoreVgpu>,
    /// Issue 18: the vGPU runs time-sliced inside the GI at `placement`, sharing it with other
    /// vGPUs of its type up to the driver's per-GI maximum (the GI may already exist). A reader
    /// that predates the field counts a whole GI there, or elsewhere: fewer free slices, never
    /// more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub time_sliced: bool,
}

/// One more vGPU of a multi-vGPU reservation: the per-vGPU fields of [`Reservation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoreVgpu {
    /// `GPU-…` UUID of the planned GPU.
    pub gpu_uuid: String,
    /// The vGPU type, as the host spells it.
    pub vgpu_type: String,
    /// GI profile name backing it.
    pub profile: String,
    /// GI profile id on that GPU model.
    pub profile_id: GiProfileId,
    /// Planned placement in memory slices.
    pub placement: Placement,
    /// Time-sliced inside the GI at `placement` ([`Reservation::time_sliced`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub time_sliced: bool,
}

/// The journal of an `assign` (and of the `unassign` that undoes it): each step is written
/// before (or, for `Relocated`, `Done` and `Unassigned`, after) the vCenter call it names.
/// An `unassign` ends by clearing the reservation, so "released" is no reservation at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// The slice is booked; the VM is untouched.
    Reserved,
    /// `RelocateVM_Task` was (or is about to be) started.
    Relocating,
    /// The VM is on the planned host, without the vGPU yet.
    Relocated,
    /// `ReconfigVM_Task` (add the vGPU) was (or is about to be) started.
    Configuring,
    /// The VM has its vGPU: the assignment is complete.
    Done,
    /// `vmig unassign`: the `ReconfigVM_Task` that removes the vGPU (and restores the
    /// memory lock) was (or is about to be) started; the slice still counts.
    Unassigning,
    /// `vmig unassign`: the vGPU is gone; only clearing the reservation (the release) is left.
    Unassigned,
    /// `vmig plan --apply`: the reservation names the move's destination; the relocation
    /// (cold, or vMotion of a running VM) was (or is about to be) started. `done` follows.
    Moving,
}

impl Step {
    /// The word used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Reserved => "reserved",
            Step::Relocating => "relocating",
            Step::Relocated => "relocated",
            Step::Configuring => "configuring",
            Step::Done => "done",
            Step::Unassigning => "unassigning",
            Step::Unassigned => "unassigned",
            Step::Moving => "moving",
        }
    }

    /// The command whose journal this step is: `assign` or `unassign`.
    pub fn command(self) -> &'static str {
        match self {
            Step::Unassigning | Step::Unassigned => "unassign",
            Step::Moving => "plan --apply",
            Step::Reserved
            | Step::Relocating
            | Step::Relocated
            | Step::Configuring
            | Step::Done => "assign",
        }
    }
}

impl Reservation {
    /// Parses a custom-attribute value and checks its bounds ([`validate`]): every
    /// reader goes through here, so a hostile value is refused as a whole, with its reason.
    pub fn from_json(text: &str) -> Result<Self, String> {
        validate::check_size(text)?;
        let r: Reservation = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if r.schema != RESERVATION_SCHEMA {
            return Err(format!("unsupported reservation schema `{}`", r.schema));
        }
        validate::check(&r)?;
        Ok(r)
    }

    /// The journal step; older reservations without one are finished.
    pub fn step(&self) -> Step {
        self.step.unwrap_or(Step::Done)
    }

    /// Whether it has expired at `now` (vCenter time); an unreadable expiry never expires.
    pub fn expired(&self, now: time::OffsetDateTime) -> bool {
        self.expires_at
            .as_deref()
            .and_then(crate::times::parse_time)
            .is_some_and(|t| t <= now)
    }

    /// Every vGPU type of the reservation, in the order `assign` was given them.
    pub fn vgpu_types(&self) -> Vec<&str> {
        std::iter::once(self.vgpu_type.as_str())
            .chain(self.more.iter().map(|m| m.vgpu_type.as_str()))
            .collect()
    }

    /// The reservation as one single-vGPU reservation per vGPU (the first is `self` without
    /// `more`); each shares the journal, token and expiry, so readers judge each placement
    /// as they judge a single one.
    pub fn each_vgpu(&self) -> Vec<Reservation> {
        let first = Reservation {
            more: Vec::new(),
            ..self.clone()
        };
        let rest = self.more.iter().map(|m| Reservation {
            gpu_uuid: m.gpu_uuid.clone(),
            vgpu_type: m.vgpu_type.clone(),
            profile: m.profile.clone(),
            profile_id: m.profile_id,
            placement: m.placement,
            time_sliced: m.time_sliced,
            ..first.clone()
        });
        std::iter::once(first.clone()).chain(rest).collect()
    }

    /// Compact JSON, as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A reservation and the VM that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldReservation {
    /// The VM's name.
    pub vm: String,
    /// The VM's managed object id (tie-breaker for ordering).
    pub vm_moref: String,
    /// The reservation.
    pub reservation: Reservation,
}

impl HeldReservation {
    /// Whether `reported` (an agent's VM id: a name or a BIOS UUID, as NVML's
    /// `nvmlVgpuInstanceGetVmID` returns either) names this VM.
    pub fn is_vm(&self, reported: &str) -> bool {
        reported == self.vm
            || self
                .reservation
                .vm_uuid
                .as_deref()
                .is_some_and(|u| same_uuid(u, reported))
    }
}

/// BIOS UUIDs compared as vSphere and NVML may spell them: case and dashes may differ.
/// Anything that is not a UUID is compared exactly, ignoring case.
pub fn same_uuid(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> Option<String> {
        let s = s.trim();
        if !s.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return None;
        }
        let hex: String = s
            .chars()
            .filter(char::is_ascii_hexdigit)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        (hex.len() == 32).then_some(hex)
    };
    match (norm(a), norm(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// What became of a reservation when it was applied to the reported layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// Counted at its planned placement.
    Held,
    /// The planned placement was taken; counted at another free placement.
    Moved,
    /// The host's agent reports the VM's vGPU running: the reported layout already counts it.
    Running,
    /// No free placement of its profile is left on the host: overbooked.
    Unplaceable,
    /// A reservation with a higher fencing token holds its placement: this one is the late
    /// write of a vmig whose lock was broken, and is not counted.
    Superseded,
    /// Its `expires_at` has passed: not counted.
    Expired,
}

impl ReservationStatus {
    /// The word used in JSON and text output.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Moved => "moved",
            ReservationStatus::Running => "running",
            ReservationStatus::Unplaceable => "unplaceable",
            ReservationStatus::Superseded => "superseded",
            ReservationStatus::Expired => "expired",
        }
    }
}

/// One reservation applied to one GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedReservation {
    /// The holder and what it asked for.
    pub held: HeldReservation,
    /// The outcome.
    pub status: ReservationStatus,
    /// Where it is counted (`None` when running or unplaceable).
    pub placement: Option<Placement>,
}

/// Applies a host's reservations (any order) to the per-GPU states built from its report at
/// vCenter time `now`. Fenced reservations go first, highest token first (a higher token
/// was written knowing every lower one that had been written before it), then older
/// fence-less ones by time, then VM. `states[i]` belongs to `report.gpus[i]` (`None` for
/// GPUs without a usable state) and `slots[i]` are its time-sliced GIs
/// ([`mig::report::GpuReport::gpu_slots`]): a time-sliced reservation books a slot there, in
/// a GI that exists or one it opens in `states[i]`. Returns, per GPU, the reservations counted on it; running,
/// unplaceable, superseded and expired ones are attached to their planned GPU.
pub fn apply(
    report: &HostReport,
    states: &mut [Option<MigState>],
    slots: &mut [GpuSlots],
    held: Vec<HeldReservation>,
    now: time::OffsetDateTime,
) -> Vec<Vec<AppliedReservation>> {
    // A multi-vGPU reservation counts each of its vGPUs (issue 18); the sort below is
    // stable, so they keep their order.
    let mut held: Vec<HeldReservation> = held
        .into_iter()
        .flat_map(|h| {
            h.reservation
                .each_vgpu()
                .into_iter()
                .map(move |reservation| HeldReservation {
                    reservation,
                    ..h.clone()
                })
        })
        .collect();
    held.sort_by(|a, b| {
        let key = |h: &HeldReservation| {
            (
                std::cmp::Reverse(h.reservation.token),
                h.reservation.reserved_at.clone(),
                h.vm_moref.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    let mut out: Vec<Vec<AppliedReservation>> = vec![Vec::new(); states.len()];
    for h in held {
        let planned = report
            .gpus
            .iter()
            .position(|g| g.uuid == h.reservation.gpu_uuid);
        let running = report.gpus.iter().flat_map(|g| &g.gpu_instances).any(|gi| {
            (gi.in_use && gi.vm.as_deref().is_some_and(|v| h.is_vm(v)))
                || gi
                    .vgpus
                    .iter()
                    .any(|v| v.vm.as_deref().is_some_and(|v| h.is_vm(v)))
        });
        let attach = planned.unwrap_or(0);
        let early = if running {
            Some(ReservationStatus::Running)
        } else if h.reservation.expired(now) {
            Some(ReservationStatus::Expired)
        } else if planned.is_some_and(|i| superseded(&out[i], &h)) {
            Some(ReservationStatus::Superseded)
        } else {
            None
        };
        if let Some(status) = early {
            if let Some(slot) = out.get_mut(attach) {
                slot.push(AppliedReservation {
                    held: h,
                    status,
                    placement: None,
                });
            }
            continue;
        }
        // Planned GPU first, then the host's other GPUs.
        let mut order: Vec<usize> = planned.into_iter().collect();
        order.extend((0..states.len()).filter(|i| Some(*i) != planned));
        let placed = if h.reservation.time_sliced {
            place_sliced(report, states, slots, &h.reservation, planned, &order)
        } else {
            place_whole(states, &h.reservation, planned, &order)
        };
        match placed {
            Some((i, p, status)) => out[i].push(AppliedReservation {
                held: h,
                status,
                placement: Some(p),
            }),
            None => {
                if let Some(slot) = out.get_mut(attach) {
                    slot.push(AppliedReservation {
                        held: h,
                        status: ReservationStatus::Unplaceable,
                        placement: None,
                    });
                }
            }
        }
    }
    out
}

/// Whether a reservation with a higher token already holds a placement on this GPU that
/// overlaps `h`'s planned one.
fn superseded(on_gpu: &[AppliedReservation], h: &HeldReservation) -> bool {
    let Some(mine) = h.reservation.token else {
        return false;
    };
    on_gpu.iter().any(|a| {
        // Time-sliced vGPUs of one GI share its placement by design; the slot count decides.
        let sharing = h.reservation.time_sliced
            && a.held.reservation.time_sliced
            && a.placement == Some(h.reservation.placement);
        a.held.reservation.token.is_some_and(|t| t > mine)
            && !sharing
            && a.placement
                .is_some_and(|p| p.overlaps(h.reservation.placement))
    })
}

/// A whole-GI reservation: at its planned placement on its planned GPU (`Held`), else at the
/// best fit on the first GPU of `order` with room (`Moved`).
fn place_whole(
    states: &mut [Option<MigState>],
    r: &Reservation,
    planned: Option<usize>,
    order: &[usize],
) -> Option<(usize, Placement, ReservationStatus)> {
    for &i in order {
        let Some(state) = states[i].as_mut() else {
            continue;
        };
        let Some(model) = state.try_gpu_model() else {
            continue;
        };
        let Some(profile) = profile_for(model, r) else {
            continue;
        };
        if Some(i) == planned && state.create_gi(profile, Some(r.placement)).is_ok() {
            return Some((i, r.placement, ReservationStatus::Held));
        }
        if let Some(p) = mig::planner::best_fit_placement(state, profile)
            && state.create_gi(profile, Some(p)).is_ok()
        {
            return Some((i, p, ReservationStatus::Moved));
        }
    }
    None
}

/// A time-sliced reservation (issue 18): one slot in the GI at its planned placement on its
/// planned GPU, joined or opened there (`Held`); else a slot where the packing rule puts it
/// on the first GPU of `order` that runs the type (`Moved`).
fn place_sliced(
    report: &HostReport,
    states: &mut [Option<MigState>],
    slots: &mut [GpuSlots],
    r: &Reservation,
    planned: Option<usize>,
    order: &[usize],
) -> Option<(usize, Placement, ReservationStatus)> {
    let sliced = |i: usize, state: &MigState| {
        let profile = profile_for(state.try_gpu_model()?, r)?;
        let name = mig::vgpu::base_name_of(&r.vgpu_type);
        report
            .gpus
            .get(i)?
            .sliced_types()
            .into_iter()
            .find(|t| t.name == name && t.gi_profile == profile)
    };
    if let Some(i) = planned
        && let (Some(state), Some(gpu)) = (states[i].as_mut(), slots.get_mut(i))
        && let Some(t) = sliced(i, state)
        && vgpu_slots::book_at(state, gpu, &t, r.placement).is_ok()
    {
        return Some((i, r.placement, ReservationStatus::Held));
    }
    for &i in order {
        let (Some(state), Some(gpu)) = (states[i].as_mut(), slots.get_mut(i)) else {
            continue;
        };
        let Some(t) = sliced(i, state) else { continue };
        if let Some((_, p, _)) = vgpu_slots::book_best(state, gpu, &t) {
            return Some((i, p, ReservationStatus::Moved));
        }
    }
    None
}

/// The reservation's GI profile on `model`: by name, since profile ids are per model.
fn profile_for(model: &GpuModel, r: &Reservation) -> Option<GiProfileId> {
    model.gi_profile_by_name(&r.profile).map(|p| p.id)
}

#[cfg(test)]
mod tests {
    use mig::report::{GiReport, GpuReport};
    use mig::{GpuInstanceId, GpuModel};

    use super::*;

    fn res(vm: &str, at: &str, placement: Placement) -> HeldReservation {
        HeldReservation {
            vm: vm.into(),
            vm_moref: format!("vm-{vm}"),
            reservation: Reservation {
                schema: RESERVATION_SCHEMA.into(),
                host: "host-1".into(),
                host_name: "h".into(),
                gpu_uuid: "GPU-0".into(),
                vgpu_type: "grid_a100-3-20c".into(),
                profile: "3g.20gb".into(),
                profile_id: GiProfileId(9),
                placement,
                reserved_at: at.into(),
                by: "u@vc".into(),
                memory_locked_before: None,
                token: None,
                step: None,
                task: None,
                from_host: None,
                expires_at: None,
                vm_uuid: None,
                more: Vec::new(),
                time_sliced: false,
            },
        }
    }

    fn slots(rep: &HostReport) -> Vec<GpuSlots> {
        rep.gpus.iter().map(GpuReport::gpu_slots).collect()
    }

    fn report(gis: Vec<GiReport>) -> HostReport {
        HostReport {
            schema: mig::report::SCHEMA_V1.into(),
            agent_version: "t".into(),
            host_uuid: "u".into(),
            generation: 1,
            observed_at: "2026-01-01T00:00:00Z".into(),
            heartbeat_interval_s: 60,
            usage: None,
            gpus: vec![GpuReport {
                sliced_types: Vec::new(),
                timesliced: None,
                index: 0,
                uuid: "GPU-0".into(),
                name: "NVIDIA A100-PCIE-40GB".into(),
                pci_bus_id: "0".into(),
                model: Some("a100-pcie-40gb".into()),
                mig_mode: None,
                gpu_instances: gis,
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
    }

    #[test]
    fn earlier_reservation_wins_the_placement_later_one_moves_then_overbooks() {
        let model = GpuModel::by_key("a100-pcie-40gb").unwrap();
        let rep = report(vec![]);
        let mut states = vec![Some(MigState::new(model))];
        let applied = apply(
            &rep,
            &mut states,
            &mut slots(&rep),
            vec![
                res("c", "2026-01-01T00:00:03Z", Placement::new(4, 4)),
                res("a", "2026-01-01T00:00:01Z", Placement::new(4, 4)),
                res("b", "2026-01-01T00:00:02Z", Placement::new(4, 4)),
            ],
            now(),
        );
        let got: Vec<_> = applied[0]
            .iter()
            .map(|a| (a.held.vm.as_str(), a.status, a.placement))
            .collect();
        assert_eq!(
            got,
            [
                ("a", ReservationStatus::Held, Some(Placement::new(4, 4))),
                ("b", ReservationStatus::Moved, Some(Placement::new(0, 4))),
                ("c", ReservationStatus::Unplaceable, None),
            ]
        );
        assert_eq!(states[0].as_ref().unwrap().gpu_instances.len(), 2);
    }

    /// A 3g.20gb GI at 4:4 that the agent reports in use by `vm`, and the GPU's state with it.
    fn running_3g(vm: &str) -> (GiReport, Vec<Option<MigState>>) {
        let gi = GiReport {
            vgpus: Vec::new(),
            gi_id: GpuInstanceId(1),
            profile_id: GiProfileId(9),
            profile: "3g.20gb".into(),
            placement: Placement::new(4, 4),
            compute_instances: vec![],
            in_use: true,
            vm: Some(vm.into()),
            vgpu_type: None,
            processes: vec![],
        };
        let mut state = MigState::new(GpuModel::by_key("a100-pcie-40gb").unwrap());
        state
            .create_gi(GiProfileId(9), Some(Placement::new(4, 4)))
            .unwrap();
        (gi, vec![Some(state)])
    }

    #[test]
    fn running_vm_is_not_counted_twice() {
        let (gi, mut states) = running_3g("a");
        let rep = report(vec![gi]);
        let applied = apply(
            &rep,
            &mut states,
            &mut slots(&rep),
            vec![res("a", "2026-01-01T00:00:01Z", Placement::new(4, 4))],
            now(),
        );
        assert_eq!(applied[0][0].status, ReservationStatus::Running);
        assert_eq!(states[0].as_ref().unwrap().gpu_instances.len(), 1);
    }

    fn now() -> time::OffsetDateTime {
        crate::times::parse_time("2026-06-01T00:00:00Z").unwrap()
    }

    #[test]
    fn higher_token_wins_lower_is_superseded_expired_not_counted() {
        let model = GpuModel::by_key("a100-pcie-40gb").unwrap();
        let rep = report(vec![]);
        let mut states = vec![Some(MigState::new(model))];
        let mut late = res("late", "2026-01-01T00:00:05Z", Placement::new(4, 4));
        late.reservation.token = Some(10);
        let mut winner = res("winner", "2026-01-01T00:00:09Z", Placement::new(4, 4));
        winner.reservation.token = Some(11);
        let mut old = res("old", "2026-01-01T00:00:01Z", Placement::new(0, 4));
        old.reservation.token = Some(3);
        old.reservation.expires_at = Some("2026-02-01T00:00:00Z".into());
        let applied = apply(
            &rep,
            &mut states,
            &mut slots(&rep),
            vec![late, old, winner],
            now(),
        );
        let got: Vec<_> = applied[0]
            .iter()
            .map(|a| (a.held.vm.as_str(), a.status))
            .collect();
        assert_eq!(
            got,
            [
                ("winner", ReservationStatus::Held),
                ("late", ReservationStatus::Superseded),
                ("old", ReservationStatus::Expired),
            ]
        );
        assert_eq!(states[0].as_ref().unwrap().gpu_instances.len(), 1);
    }

    #[test]
    fn running_vm_matched_by_bios_uuid() {
        let (gi, mut states) = running_3g("4213A1B2-0000-1111-2222-333344445555");
        let mut h = res("a", "2026-01-01T00:00:01Z", Placement::new(4, 4));
        h.reservation.vm_uuid = Some("4213a1b2-0000-1111-2222-333344445555".into());
        let rep = report(vec![gi]);
        let applied = apply(&rep, &mut states, &mut slots(&rep), vec![h], now());
        assert_eq!(applied[0][0].status, ReservationStatus::Running);
    }

    /// An RTX PRO 6000 whose GI 3 (1g.24gb at 0:3) runs one DC-1-8C of VM `x`; the type
    /// runs up to 3 to a GI.
    fn rtx_with_one_sliced_vgpu() -> (HostReport, Vec<Option<MigState>>) {
        let gi = GiReport {
            vgpus: vec![mig::report::VgpuReport {
                vm: Some("x".into()),
                vgpu_type: "NVIDIA DC-1-8C".into(),
            }],
            gi_id: GpuInstanceId(3),
            profile_id: GiProfileId(14),
            profile: "1g.24gb".into(),
            placement: Placement::new(0, 3),
            compute_instances: vec![],
            in_use: true,
            vm: Some("x".into()),
            vgpu_type: Some("NVIDIA DC-1-8C".into()),
            processes: vec![],
        };
        let mut rep = report(vec![gi]);
        let g = &mut rep.gpus[0];
        g.name = "NVIDIA RTX PRO 6000 Blackwell Server Edition".into();
        g.model = Some("rtx-pro-6000-bse-96gb".into());
        g.mig_mode = Some(mig::report::MigModeReport {
            current: true,
            pending: true,
        });
        g.sliced_types = vec![mig::report::SlicedTypeReport {
            vgpu_type: "NVIDIA DC-1-8C".into(),
            gi_profile_id: GiProfileId(14),
            max_per_gi: 3,
        }];
        let model = GpuModel::by_key("rtx-pro-6000-bse-96gb").unwrap();
        let state = rep.gpus[0].to_state(model).unwrap();
        (rep, vec![Some(state)])
    }

    fn sliced(vm: &str, at: &str, placement: Placement) -> HeldReservation {
        let mut h = res(vm, at, placement);
        h.reservation.vgpu_type = "nvidia_dc-1-8c".into();
        h.reservation.profile = "1g.24gb".into();
        h.reservation.profile_id = GiProfileId(14);
        h.reservation.time_sliced = true;
        h
    }

    #[test]
    fn time_sliced_reservations_share_a_gi_up_to_its_maximum_then_open_another() {
        let (rep, mut states) = rtx_with_one_sliced_vgpu();
        let mut slots = slots(&rep);
        let applied = apply(
            &rep,
            &mut states,
            &mut slots,
            vec![
                sliced("a", "2026-01-01T00:00:01Z", Placement::new(0, 3)),
                sliced("b", "2026-01-01T00:00:02Z", Placement::new(0, 3)),
                // GI 3 is full by now (x, a, b): c is counted in a new GI.
                sliced("c", "2026-01-01T00:00:03Z", Placement::new(0, 3)),
                // d planned a new GI at 9:3: counted there, its own placement first.
                sliced("d", "2026-01-01T00:00:04Z", Placement::new(9, 3)),
                // x runs already: not counted twice.
                sliced("x", "2026-01-01T00:00:05Z", Placement::new(0, 3)),
            ],
            now(),
        );
        let got: Vec<_> = applied[0]
            .iter()
            .map(|a| (a.held.vm.as_str(), a.status, a.placement))
            .collect();
        let at = |s, n| Some(Placement::new(s, n));
        assert_eq!(
            got,
            [
                ("a", ReservationStatus::Held, at(0, 3)),
                ("b", ReservationStatus::Held, at(0, 3)),
                ("c", ReservationStatus::Moved, at(3, 3)),
                ("d", ReservationStatus::Held, at(9, 3)),
                ("x", ReservationStatus::Running, None),
            ]
        );
        let state = states[0].as_ref().unwrap();
        assert_eq!(state.gpu_instances.len(), 3, "GI 3 plus two opened");
        let used: Vec<u32> = slots[0].gis.iter().map(|g| g.used).collect();
        assert_eq!(used, [3, 1, 1]);
        // Capacity left: 2 + 2 slots in the opened GIs, one more GI (6:3) of 3.
        let t = rep.gpus[0].sliced_types().remove(0);
        assert_eq!(
            mig::vgpu_slots::capacity_on(state, &slots[0], &t).unwrap(),
            2 + 2 + 3
        );
    }

    /// (VM, status) of each reservation counted on GPU 0, in the order `apply` judged them.
    fn statuses(
        rep: &HostReport,
        states: &mut [Option<MigState>],
        held: Vec<HeldReservation>,
    ) -> Vec<(String, ReservationStatus)> {
        apply(rep, states, &mut slots(rep), held, now())[0]
            .iter()
            .map(|a| (a.held.vm.clone(), a.status))
            .collect()
    }

    #[test]
    fn time_sliced_reservations_sharing_a_gi_do_not_supersede_each_other() {
        let (rep, mut states) = rtx_with_one_sliced_vgpu();
        let mut late = sliced("late", "2026-01-01T00:00:01Z", Placement::new(0, 3));
        late.reservation.token = Some(5);
        let mut winner = sliced("winner", "2026-01-01T00:00:02Z", Placement::new(0, 3));
        winner.reservation.token = Some(9);
        assert_eq!(
            statuses(&rep, &mut states, vec![late, winner]),
            [
                ("winner".into(), ReservationStatus::Held),
                ("late".into(), ReservationStatus::Held)
            ]
        );
        // A whole-GI reservation with a higher token on those slices still wins over both.
        let (rep, mut states) = rtx_with_one_sliced_vgpu();
        let mut whole = res("whole", "2026-01-01T00:00:01Z", Placement::new(3, 3));
        whole.reservation.profile = "1g.24gb".into();
        whole.reservation.token = Some(10);
        let mut under = sliced("under", "2026-01-01T00:00:02Z", Placement::new(3, 3));
        under.reservation.token = Some(4);
        assert_eq!(
            statuses(&rep, &mut states, vec![under, whole]),
            [
                ("whole".into(), ReservationStatus::Held),
                ("under".into(), ReservationStatus::Superseded)
            ]
        );
    }

    #[test]
    fn uuids_match_across_spellings_names_do_not() {
        assert!(same_uuid(
            "4213a1b2-0000-1111-2222-333344445555",
            "4213A1B200001111-2222333344445555"
        ));
        assert!(!same_uuid(
            "4213a1b2-0000-1111-2222-333344445555",
            "4213a1b2-0000-1111-2222-333344445556"
        ));
        assert!(same_uuid("4211-7", "4211-7"));
        assert!(!same_uuid("web-01", "web-02"));
    }

    #[test]
    fn multi_vgpu_reservation_counts_each_vgpu_and_reads_as_before() {
        let model = GpuModel::by_key("a100-pcie-40gb").unwrap();
        let mut r = res("a", "2026-01-01T00:00:01Z", Placement::new(4, 4));
        r.reservation.more.push(MoreVgpu {
            gpu_uuid: "GPU-0".into(),
            vgpu_type: "grid_a100-2-10c".into(),
            profile: "2g.10gb".into(),
            profile_id: GiProfileId(14),
            placement: Placement::new(0, 2),
            time_sliced: false,
        });
        let json = r.reservation.to_json();
        assert!(json.contains("\"more\""), "{json}");
        // A single-vGPU reservation stores no `more` at all (older readers see no change).
        let single = res("b", "2026-01-01T00:00:01Z", Placement::new(4, 4));
        assert!(!single.reservation.to_json().contains("more"));
        // The first vGPU stays in the old fields.
        let back = Reservation::from_json(&json).unwrap();
        assert_eq!(back.placement, Placement::new(4, 4));
        assert_eq!(back.vgpu_types(), ["grid_a100-3-20c", "grid_a100-2-10c"]);
        let mut states = vec![Some(MigState::new(model))];
        let rep = report(vec![]);
        let applied = apply(&rep, &mut states, &mut slots(&rep), vec![r], now());
        let got: Vec<_> = applied[0]
            .iter()
            .map(|a| (a.held.reservation.vgpu_type.as_str(), a.status, a.placement))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "grid_a100-3-20c",
                    ReservationStatus::Held,
                    Some(Placement::new(4, 4))
                ),
                (
                    "grid_a100-2-10c",
                    ReservationStatus::Held,
                    Some(Placement::new(0, 2))
                ),
            ]
        );
        assert_eq!(states[0].as_ref().unwrap().gpu_instances.len(), 2);
    }

    #[test]
    fn json_round_trip_and_schema_check() {
        let r = res("a", "2026-01-01T00:00:01Z", Placement::new(4, 4)).reservation;
        assert_eq!(Reservation::from_json(&r.to_json()).unwrap(), r);
        let other = r.to_json().replace(RESERVATION_SCHEMA, "x/v9");
        assert!(Reservation::from_json(&other).unwrap_err().contains("x/v9"));
    }
}
