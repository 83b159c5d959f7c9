//! MIG events for vCenter's event log: what changed between two observations (GI/CI created or
//! destroyed, MIG mode change pending or done, an NVML error on a GPU), what a layout did
//! (applied, refused), and NVML failing as a whole — each as an `EventEx` with a
//! `com.vmig.mig.*` type id on the host's HostSystem, so admins see them under the host's
//! Monitor › Events and can build alarms on them (docs/admin-guide.md, "MIG events").
//!
//! Reusable: anything in the daemon that changes or sees MIG state pushes a [`MigEvent`] into
//! the [`EventOutbox`] in `Shared`; the publish loop posts what the outbox releases. The outbox
//! is bounded and rate-limited (a token bucket: [`BURST`] at once, then one per
//! [`REFILL`]), so a flapping GPU or a script creating and destroying instances in a loop cannot
//! flood vCenter's event database; what it drops is counted and reported in one summary event.
//! Pure: no clock (times are passed in), no vCenter.
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use mig::report::GpuReport;
use tokio::time::Instant;

/// Events posted at once before the rate limit applies.
pub const BURST: u32 = 10;
/// One more event may be posted per this interval.
pub const REFILL: Duration = Duration::from_secs(6);
/// Events held while vCenter is unreachable or the limit applies; older ones are dropped.
pub const MAX_PENDING: usize = 64;

/// What happened (its `eventTypeId` is [`EventKind::type_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    GiCreated,
    GiDestroyed,
    CiCreated,
    CiDestroyed,
    ModeChangePending,
    ModeChangeDone,
    LayoutApplied,
    LayoutRefused,
    NvmlError,
    /// A GPU reported an XID error (NVML event, read by the sampler).
    Xid,
    /// Events dropped by the rate limit.
    Suppressed,
}

impl EventKind {
    /// The `EventEx.eventTypeId` alarms match on.
    pub fn type_id(self) -> &'static str {
        match self {
            EventKind::GiCreated => "com.vmig.mig.gi.created",
            EventKind::GiDestroyed => "com.vmig.mig.gi.destroyed",
            EventKind::CiCreated => "com.vmig.mig.ci.created",
            EventKind::CiDestroyed => "com.vmig.mig.ci.destroyed",
            EventKind::ModeChangePending => "com.vmig.mig.mode.pending",
            EventKind::ModeChangeDone => "com.vmig.mig.mode.done",
            EventKind::LayoutApplied => "com.vmig.mig.layout.applied",
            EventKind::LayoutRefused => "com.vmig.mig.layout.refused",
            EventKind::NvmlError => "com.vmig.mig.nvml.error",
            EventKind::Xid => "com.vmig.mig.gpu.xid",
            EventKind::Suppressed => "com.vmig.mig.events.suppressed",
        }
    }

    /// `info`, `warning` or `error`.
    pub fn severity(self) -> vcenter_client::EventSeverity {
        use vcenter_client::EventSeverity::{Error, Info, Warning};
        match self {
            EventKind::LayoutRefused | EventKind::Suppressed => Warning,
            EventKind::NvmlError | EventKind::Xid => Error,
            _ => Info,
        }
    }
}

/// One event to post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigEvent {
    pub kind: EventKind,
    /// One sentence naming the GPU (index and UUID) and the instance.
    pub message: String,
    /// For [`EventKind::Suppressed`]: how many events it stands for.
    suppressed: u32,
}

impl MigEvent {
    fn new(kind: EventKind, message: String) -> Self {
        MigEvent {
            kind,
            message,
            suppressed: 0,
        }
    }

    /// A layout was enforced (`what` is the account of what was done).
    pub fn layout_applied(layout: &str, what: &str) -> Self {
        Self::new(
            EventKind::LayoutApplied,
            clip(format!("vmig layout {layout} applied: {what}")),
        )
    }

    /// A layout was refused or rolled back (`why` says why).
    pub fn layout_refused(layout: &str, why: &str) -> Self {
        Self::new(
            EventKind::LayoutRefused,
            clip(format!("vmig layout {layout} not applied: {why}")),
        )
    }

    /// GPU `uuid` reported XID `xid` (on GPU instance `gi`, when NVML names one).
    pub fn xid(uuid: &str, xid: u64, gi: Option<mig::GpuInstanceId>) -> Self {
        let on = gi
            .map(|g| format!(" on GPU instance {g}"))
            .unwrap_or_default();
        Self::new(
            EventKind::Xid,
            clip(format!(
                "GPU {uuid} reported XID {xid}{on}; see NVIDIA's XID catalogue for what it means"
            )),
        )
    }

    /// NVML failed as a whole.
    pub fn nvml_error(message: &str) -> Self {
        Self::new(
            EventKind::NvmlError,
            clip(format!("NVML failed: {message}")),
        )
    }
}

/// Event messages stay short: vCenter shows one line.
const MAX_MESSAGE_CHARS: usize = 400;

fn clip(s: String) -> String {
    if s.chars().count() <= MAX_MESSAGE_CHARS {
        s
    } else {
        s.chars().take(MAX_MESSAGE_CHARS - 1).chain(['…']).collect()
    }
}

fn gpu_label(g: &GpuReport) -> String {
    format!("GPU {} ({})", g.index, g.uuid)
}

/// The events between two observations of the host's GPUs, matched by UUID. A GPU that
/// appears or disappears as a whole gives none (that is a reboot or a driver reload, not a
/// MIG change).
pub fn changes(before: &[GpuReport], after: &[GpuReport]) -> Vec<MigEvent> {
    let mut out = Vec::new();
    for a in after {
        let Some(b) = before.iter().find(|b| b.uuid == a.uuid) else {
            continue;
        };
        let gpu = gpu_label(a);
        if let (Some(bm), Some(am)) = (b.mig_mode, a.mig_mode) {
            let on_off = |v: bool| if v { "on" } else { "off" };
            if am.pending != am.current && (bm.pending != am.pending || bm.current != am.current) {
                out.push(MigEvent::new(
                    EventKind::ModeChangePending,
                    format!(
                        "{gpu}: MIG mode {} pending, effective after a GPU reset or host reboot",
                        on_off(am.pending)
                    ),
                ));
            }
            if bm.current != am.current {
                out.push(MigEvent::new(
                    EventKind::ModeChangeDone,
                    format!("{gpu}: MIG mode is now {}", on_off(am.current)),
                ));
            }
        }
        let key = |gi: &mig::report::GiReport| (gi.gi_id, gi.profile_id, gi.placement);
        let gis_before: BTreeMap<_, _> = b.gpu_instances.iter().map(|gi| (key(gi), gi)).collect();
        let gis_after: BTreeMap<_, _> = a.gpu_instances.iter().map(|gi| (key(gi), gi)).collect();
        for (k, gi) in &gis_before {
            if !gis_after.contains_key(k) {
                out.push(MigEvent::new(
                    EventKind::GiDestroyed,
                    format!(
                        "{gpu}: GPU instance {} ({} @{}) destroyed",
                        gi.gi_id, gi.profile, gi.placement
                    ),
                ));
            }
        }
        for (k, gi) in &gis_after {
            let Some(old) = gis_before.get(k) else {
                out.push(MigEvent::new(
                    EventKind::GiCreated,
                    format!(
                        "{gpu}: GPU instance {} ({} @{}) created",
                        gi.gi_id, gi.profile, gi.placement
                    ),
                ));
                continue;
            };
            let cis = |g: &mig::report::GiReport| -> Vec<(u32, String)> {
                g.compute_instances
                    .iter()
                    .map(|c| (c.ci_id.0, c.profile.clone()))
                    .collect()
            };
            let (cb, ca) = (cis(old), cis(gi));
            for (id, profile) in cb.iter().filter(|c| !ca.contains(c)) {
                out.push(MigEvent::new(
                    EventKind::CiDestroyed,
                    format!(
                        "{gpu}: compute instance {id} ({profile}) of GPU instance {} destroyed",
                        gi.gi_id
                    ),
                ));
            }
            for (id, profile) in ca.iter().filter(|c| !cb.contains(c)) {
                out.push(MigEvent::new(
                    EventKind::CiCreated,
                    format!(
                        "{gpu}: compute instance {id} ({profile}) of GPU instance {} created",
                        gi.gi_id
                    ),
                ));
            }
        }
        if let (None, Some(e)) = (&b.error, &a.error) {
            out.push(MigEvent::new(EventKind::NvmlError, format!("{gpu}: {e}")));
        }
    }
    for e in &mut out {
        e.message = clip(std::mem::take(&mut e.message));
    }
    out
}

/// The events of the first observation: MIG mode changes still pending (a reset is needed)
/// and GPUs NVML fails on.
pub fn at_start(gpus: &[GpuReport]) -> Vec<MigEvent> {
    let mut out = Vec::new();
    for g in gpus {
        if let Some(m) = g.mig_mode.filter(|m| m.current != m.pending) {
            out.push(MigEvent::new(
                EventKind::ModeChangePending,
                format!(
                    "{}: MIG mode {} pending, effective after a GPU reset or host reboot",
                    gpu_label(g),
                    if m.pending { "on" } else { "off" }
                ),
            ));
        }
        if let Some(e) = &g.error {
            out.push(MigEvent::new(
                EventKind::NvmlError,
                clip(format!("{}: {e}", gpu_label(g))),
            ));
        }
    }
    out
}

/// Pending events and the rate limit on posting them.
#[derive(Debug)]
pub struct EventOutbox {
    pending: VecDeque<MigEvent>,
    tokens: u32,
    refilled_at: Option<Instant>,
    dropped: u32,
    /// After a failed post, nothing is due before this (the next heartbeat): a missing
    /// privilege must not make the publisher retry every few seconds.
    held_until: Option<Instant>,
}

impl Default for EventOutbox {
    fn default() -> Self {
        EventOutbox {
            pending: VecDeque::new(),
            tokens: BURST,
            refilled_at: None,
            dropped: 0,
            held_until: None,
        }
    }
}

impl EventOutbox {
    /// Queue an event; the oldest is dropped (and counted) when [`MAX_PENDING`] are waiting.
    pub fn push(&mut self, event: MigEvent) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            self.dropped += 1;
        }
        self.pending.push_back(event);
    }

    fn refill(&mut self, now: Instant) {
        let since = *self.refilled_at.get_or_insert(now);
        let earned = (now.saturating_duration_since(since).as_secs() / REFILL.as_secs()) as u32;
        if earned > 0 {
            self.tokens = (self.tokens + earned).min(BURST);
            self.refilled_at = Some(since + REFILL * earned);
        }
        if self.tokens == BURST {
            self.refilled_at = Some(now);
        }
    }

    /// When posting should next happen: now if an event can go, the next refill if events
    /// wait for a token, `None` when nothing waits.
    pub fn due_at(&mut self, now: Instant) -> Option<Instant> {
        if self.pending.is_empty() && self.dropped == 0 {
            return None;
        }
        self.refill(now);
        let due = if self.tokens > 0 {
            now
        } else {
            self.refilled_at.unwrap_or(now) + REFILL
        };
        Some(self.held_until.map_or(due, |h| h.max(due)))
    }

    /// Nothing is due before `until` (events still go out with any publication before it).
    pub fn hold(&mut self, until: Instant) {
        self.held_until = Some(until);
    }

    /// The events that may be posted now (a summary of dropped ones first).
    pub fn take_ready(&mut self, now: Instant) -> Vec<MigEvent> {
        self.refill(now);
        if self.held_until.is_some_and(|h| h <= now) {
            self.held_until = None;
        }
        let mut out = Vec::new();
        if self.dropped > 0 && self.tokens > 0 {
            self.tokens -= 1;
            let mut summary = MigEvent::new(
                EventKind::Suppressed,
                format!(
                    "{} vmig MIG events were not posted (rate limit: {BURST} at once, then one per {} s)",
                    self.dropped,
                    REFILL.as_secs()
                ),
            );
            summary.suppressed = self.dropped;
            out.push(summary);
            self.dropped = 0;
        }
        while self.tokens > 0 {
            let Some(e) = self.pending.pop_front() else {
                break;
            };
            self.tokens -= 1;
            out.push(e);
        }
        out
    }

    /// Put back events that could not be posted (vCenter unreachable), keeping their order;
    /// their tokens are not refunded, so an outage cannot turn into a burst.
    pub fn requeue(&mut self, events: Vec<MigEvent>) {
        for e in events.into_iter().rev() {
            if e.kind == EventKind::Suppressed {
                self.dropped += e.suppressed;
                continue;
            }
            self.pending.push_front(e);
        }
        while self.pending.len() > MAX_PENDING {
            self.pending.pop_back();
            self.dropped += 1;
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mig::report::{CiReport, GiReport, MigModeReport};
    use mig::{CiProfileId, ComputeInstanceId, GiProfileId, GpuInstanceId, Placement};

    fn gpu(mode: (bool, bool), gis: Vec<GiReport>) -> GpuReport {
        GpuReport {
            sliced_types: Vec::new(),
            timesliced: None,
            index: 0,
            uuid: "GPU-1".into(),
            name: "NVIDIA A100-PCIE-40GB".into(),
            pci_bus_id: "00000000:3B:00.0".into(),
            model: None,
            mig_mode: Some(MigModeReport {
                current: mode.0,
                pending: mode.1,
            }),
            gpu_instances: gis,
            free: Default::default(),
            largest_placeable: None,
            fragmentation: 0.0,
            placeable_vgpu_types: vec![],
            error: None,
            nvml_free: None,
            geometry: None,
            layout_state: None,
        }
    }

    fn gi(id: u32, start: u32, cis: &[u32]) -> GiReport {
        GiReport {
            vgpus: Vec::new(),
            gi_id: GpuInstanceId(id),
            profile_id: GiProfileId(9),
            profile: "3g.20gb".into(),
            placement: Placement { start, size: 4 },
            compute_instances: cis
                .iter()
                .map(|c| CiReport {
                    ci_id: ComputeInstanceId(*c),
                    profile_id: Some(CiProfileId(2)),
                    profile: "3g.20gb".into(),
                    uuid: format!("MIG-{c}"),
                })
                .collect(),
            in_use: false,
            vm: None,
            vgpu_type: None,
            processes: vec![],
        }
    }

    fn kinds(e: &[MigEvent]) -> Vec<EventKind> {
        e.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn instance_and_mode_changes_become_events() {
        let off = gpu((false, false), vec![]);
        let pending = gpu((false, true), vec![]);
        let on = gpu((true, true), vec![]);
        assert_eq!(
            kinds(&changes(
                std::slice::from_ref(&off),
                std::slice::from_ref(&pending)
            )),
            [EventKind::ModeChangePending]
        );
        assert!(
            changes(
                std::slice::from_ref(&pending),
                std::slice::from_ref(&pending)
            )
            .is_empty(),
            "still pending: once"
        );
        assert_eq!(
            kinds(&changes(
                std::slice::from_ref(&pending),
                std::slice::from_ref(&on)
            )),
            [EventKind::ModeChangeDone]
        );
        let one = gpu((true, true), vec![gi(1, 0, &[0])]);
        let e = changes(std::slice::from_ref(&on), std::slice::from_ref(&one));
        assert_eq!(kinds(&e), [EventKind::GiCreated]);
        assert!(
            e[0].message
                .contains("GPU 0 (GPU-1): GPU instance 1 (3g.20gb @0:4) created"),
            "{}",
            e[0].message
        );
        let recut = gpu((true, true), vec![gi(1, 0, &[1])]);
        assert_eq!(
            kinds(&changes(
                std::slice::from_ref(&one),
                std::slice::from_ref(&recut)
            )),
            [EventKind::CiDestroyed, EventKind::CiCreated]
        );
        assert_eq!(
            kinds(&changes(
                std::slice::from_ref(&one),
                std::slice::from_ref(&on)
            )),
            [EventKind::GiDestroyed]
        );
        let mut failing = on.clone();
        failing.error = Some("NVML stalled".into());
        assert_eq!(
            kinds(&changes(
                std::slice::from_ref(&on),
                std::slice::from_ref(&failing)
            )),
            [EventKind::NvmlError]
        );
        assert!(
            changes(
                std::slice::from_ref(&failing),
                std::slice::from_ref(&failing)
            )
            .is_empty(),
            "an error is reported when it appears"
        );
        assert!(
            changes(&[], &[on]).is_empty(),
            "a GPU appearing is not a MIG change"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_outbox_is_rate_limited_bounded_and_says_what_it_dropped() {
        let mut o = EventOutbox::default();
        let t0 = Instant::now();
        assert_eq!(o.due_at(t0), None);
        for i in 0..100 {
            o.push(MigEvent::nvml_error(&format!("e{i}")));
        }
        assert_eq!(o.pending(), MAX_PENDING, "bounded");
        assert_eq!(o.due_at(t0), Some(t0));
        let first = o.take_ready(t0);
        assert_eq!(first.len() as u32, BURST);
        assert_eq!(
            first[0].kind,
            EventKind::Suppressed,
            "the drops are said first"
        );
        assert!(
            first[0]
                .message
                .starts_with("36 vmig MIG events were not posted"),
            "{}",
            first[0].message
        );
        assert!(o.take_ready(t0).is_empty(), "no token left");
        assert_eq!(o.due_at(t0), Some(t0 + REFILL));
        let later = t0 + REFILL * 2;
        assert_eq!(o.take_ready(later).len(), 2, "one per refill");
        // Not posted (vCenter down): back in order, no refund.
        let t = later + REFILL;
        let again = o.take_ready(t);
        let message = again[0].message.clone();
        o.requeue(again);
        assert!(o.take_ready(t).is_empty());
        assert_eq!(o.take_ready(t + REFILL)[0].message, message);
        // A failed post holds the outbox until the next heartbeat.
        let t = t + REFILL * 20;
        o.hold(t + Duration::from_secs(300));
        assert_eq!(o.due_at(t), Some(t + Duration::from_secs(300)));
    }
}
