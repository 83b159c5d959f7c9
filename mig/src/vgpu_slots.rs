//! Time-sliced MIG-backed vGPUs (issue 18): on GPUs whose driver supports it (NVIDIA names the
//! RTX PRO 6000 Blackwell Server Edition; docs/mig-model.md §8), one GPU instance hosts
//! several time-sliced vGPUs of one type, up to a per-type maximum the driver reports
//! (`nvmlVgpuTypeGetMaxInstancesPerGpuInstance`, `maxInstancePerGI`). A GI is then no longer
//! "one VM": it has *slots*.
//!
//! This module is the pure model: per GI, which type it hosts and how many slots are used;
//! per GPU, where the next vGPU of a type goes and how many more fit. Where it goes follows
//! one packing rule: **a GI that already hosts the type, the fullest first, before an
//! empty GI, before a new GI** — so GIs stay free for other types and profiles as long as
//! possible. Whether a *new* GI can be created is [`MigState`]'s business
//! ([`capacity_on`] combines both). The maxima are inputs (from the driver, or NVIDIA's
//! tables), never guessed here.

use serde::{Deserialize, Serialize};

use crate::ids::{GiProfileId, GpuInstanceId, Placement};
use crate::state::{MigError, MigState};

/// How many time-sliced vGPUs of a type one GI may host; never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct MaxPerGi(u32);

impl MaxPerGi {
    /// `None` for zero: a type no GI may host is not a time-sliced MIG-backed type.
    pub fn new(n: u32) -> Option<MaxPerGi> {
        (n > 0).then_some(MaxPerGi(n))
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for MaxPerGi {
    type Error = String;
    fn try_from(n: u32) -> Result<Self, String> {
        MaxPerGi::new(n).ok_or_else(|| "a per-GI maximum of 0 vGPUs".to_string())
    }
}

impl From<MaxPerGi> for u32 {
    fn from(m: MaxPerGi) -> u32 {
        m.0
    }
}

/// A vGPU type that runs time-sliced inside a GI of one profile.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SlicedType {
    /// The type's name without vendor prefix, lower case (as [`crate::VgpuType::base_name`]).
    pub name: String,
    /// The GI profile that hosts it.
    pub gi_profile: GiProfileId,
    /// How many fit in one GI.
    pub max_per_gi: MaxPerGi,
}

/// Why a slot operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The GI hosts another type (a GI runs one type at a time).
    #[error(
        "GI {gi} hosts vGPU type {hosted}, not {wanted}; a GI runs time-sliced vGPUs of one type"
    )]
    OtherType {
        /// The GI.
        gi: u32,
        /// What it hosts.
        hosted: String,
        /// What was asked.
        wanted: String,
    },
    /// The GI's profile is not the one the type runs in.
    #[error("GI {gi} is of GI profile {has}, vGPU type {wanted} runs in GI profile {needs}")]
    WrongProfile {
        /// The GI.
        gi: u32,
        /// Its profile.
        has: u32,
        /// The type's.
        needs: u32,
        /// The type.
        wanted: String,
    },
    /// Every slot of the GI is used.
    #[error("GI {gi} already hosts {max} vGPUs of type {wanted}, the most the driver allows")]
    Full {
        /// The GI.
        gi: u32,
        /// The maximum.
        max: u32,
        /// The type.
        wanted: String,
    },
    /// No existing GI has room: a new GI must be created first.
    #[error(
        "no GPU instance on this GPU has a free slot for vGPU type {wanted}; create a GI of profile {profile} first"
    )]
    NoRoom {
        /// The type.
        wanted: String,
        /// The GI profile to create.
        profile: u32,
    },
    /// Removing from a GI that hosts nothing of that type.
    #[error("GI {gi} hosts no vGPU of type {wanted}")]
    NotHosted {
        /// The GI.
        gi: u32,
        /// The type.
        wanted: String,
    },
    /// The GI the vGPU should join cannot exist: something else sits at its placement, or
    /// the driver would refuse to create it there.
    #[error("no GI of profile {profile} can host vGPU type {wanted} at {placement}: {reason}")]
    NoGi {
        /// The type.
        wanted: String,
        /// The GI profile.
        profile: u32,
        /// Where.
        placement: Placement,
        /// Why not.
        reason: String,
    },
    /// A GI id given twice, or not known.
    #[error("GI {gi} is {what} on this GPU")]
    UnknownGi {
        /// The GI.
        gi: u32,
        /// `unknown` or `already known`.
        what: &'static str,
    },
}

/// One GI and the time-sliced vGPUs it hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GiSlots {
    /// The GI.
    pub gi: GpuInstanceId,
    /// Its profile.
    pub profile: GiProfileId,
    /// The type it hosts (none while empty).
    pub hosted: Option<SlicedType>,
    /// vGPUs running or booked in it.
    pub used: u32,
}

impl GiSlots {
    /// An empty GI.
    pub fn empty(gi: GpuInstanceId, profile: GiProfileId) -> GiSlots {
        GiSlots {
            gi,
            profile,
            hosted: None,
            used: 0,
        }
    }

    /// How many more vGPUs of `t` this GI takes (0 for another type or profile).
    pub fn free_for(&self, t: &SlicedType) -> u32 {
        if self.profile != t.gi_profile {
            return 0;
        }
        match &self.hosted {
            None => t.max_per_gi.get(),
            Some(h) if h.name == t.name => h.max_per_gi.get().saturating_sub(self.used),
            Some(_) => 0,
        }
    }

    /// Books one slot for `t`; returns how many are used after.
    pub fn add(&mut self, t: &SlicedType) -> Result<u32, SlotError> {
        if self.profile != t.gi_profile {
            return Err(SlotError::WrongProfile {
                gi: self.gi.0,
                has: self.profile.0,
                needs: t.gi_profile.0,
                wanted: t.name.clone(),
            });
        }
        if let Some(h) = &self.hosted
            && h.name != t.name
        {
            return Err(SlotError::OtherType {
                gi: self.gi.0,
                hosted: h.name.clone(),
                wanted: t.name.clone(),
            });
        }
        if self.free_for(t) == 0 {
            return Err(SlotError::Full {
                gi: self.gi.0,
                max: t.max_per_gi.get(),
                wanted: t.name.clone(),
            });
        }
        self.hosted = Some(t.clone());
        self.used += 1;
        Ok(self.used)
    }

    /// Frees one slot of `t`; the GI hosts nothing once its last vGPU is gone.
    pub fn remove(&mut self, t: &SlicedType) -> Result<(), SlotError> {
        match &self.hosted {
            Some(h) if h.name == t.name && self.used > 0 => {
                self.used -= 1;
                if self.used == 0 {
                    self.hosted = None;
                }
                Ok(())
            }
            _ => Err(SlotError::NotHosted {
                gi: self.gi.0,
                wanted: t.name.clone(),
            }),
        }
    }
}

/// The time-sliced GIs of one GPU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuSlots {
    /// Every GI that may host time-sliced vGPUs.
    pub gis: Vec<GiSlots>,
}

impl GpuSlots {
    /// Records a (new, empty) GI.
    pub fn add_gi(&mut self, gi: GpuInstanceId, profile: GiProfileId) -> Result<(), SlotError> {
        if self.gis.iter().any(|g| g.gi == gi) {
            return Err(SlotError::UnknownGi {
                gi: gi.0,
                what: "already known",
            });
        }
        self.gis.push(GiSlots::empty(gi, profile));
        Ok(())
    }

    /// Where the next vGPU of `t` goes among the existing GIs: a GI already hosting `t`
    /// with a free slot, the fullest first (packing), else an empty GI of its profile (lowest
    /// id); `None` when a new GI is needed.
    pub fn choose(&self, t: &SlicedType) -> Option<GpuInstanceId> {
        let joining = self
            .gis
            .iter()
            .filter(|g| g.hosted.is_some() && g.free_for(t) > 0)
            .min_by_key(|g| (g.free_for(t), g.gi));
        let opening = || {
            self.gis
                .iter()
                .filter(|g| g.hosted.is_none() && g.free_for(t) > 0)
                .min_by_key(|g| g.gi)
        };
        joining.or_else(opening).map(|g| g.gi)
    }

    /// Books a slot for `t` where [`GpuSlots::choose`] says; [`SlotError::NoRoom`] when a new GI
    /// is needed.
    pub fn place(&mut self, t: &SlicedType) -> Result<GpuInstanceId, SlotError> {
        let gi = self.choose(t).ok_or_else(|| SlotError::NoRoom {
            wanted: t.name.clone(),
            profile: t.gi_profile.0,
        })?;
        self.gi_mut(gi)?.add(t)?;
        Ok(gi)
    }

    /// Books one slot for `t` in `gi` (whatever [`GpuSlots::choose`] would say): to follow a
    /// placement decided earlier, e.g. a reservation's.
    pub fn book_in(&mut self, gi: GpuInstanceId, t: &SlicedType) -> Result<u32, SlotError> {
        self.gi_mut(gi)?.add(t)
    }

    /// Frees one slot of `t` in `gi`.
    pub fn release(&mut self, gi: GpuInstanceId, t: &SlicedType) -> Result<(), SlotError> {
        self.gi_mut(gi)?.remove(t)
    }

    fn gi_mut(&mut self, gi: GpuInstanceId) -> Result<&mut GiSlots, SlotError> {
        self.gis
            .iter_mut()
            .find(|g| g.gi == gi)
            .ok_or(SlotError::UnknownGi {
                gi: gi.0,
                what: "unknown",
            })
    }

    /// vGPUs of `t` booked on this GPU.
    pub fn used(&self, t: &SlicedType) -> u32 {
        self.gis
            .iter()
            .filter(|g| g.hosted.as_ref().is_some_and(|h| h.name == t.name))
            .map(|g| g.used)
            .sum()
    }

    /// How many more vGPUs of `t` fit: free slots of the existing GIs, plus a full GI's worth
    /// for each of `new_gis` GIs that could still be created.
    pub fn capacity(&self, t: &SlicedType, new_gis: u32) -> u32 {
        let existing: u32 = self.gis.iter().map(|g| g.free_for(t)).sum();
        existing.saturating_add(new_gis.saturating_mul(t.max_per_gi.get()))
    }
}

/// How many more vGPUs of `t` fit on a GPU whose GI layout is `state` and whose time-sliced
/// GIs are `slots`: the free slots, plus the GIs of `t`'s profile `state` can still create.
pub fn capacity_on(state: &MigState, slots: &GpuSlots, t: &SlicedType) -> Result<u32, MigError> {
    Ok(slots.capacity(t, state.remaining_gi_capacity(t.gi_profile)?))
}

/// Books one vGPU of `t` in the GI at `placement`: an existing GI there (reported, or opened
/// by an earlier booking) joined if it has a free slot for `t`, else a new GI of `t`'s
/// profile created there. Nothing changes on refusal. This is how a recorded decision (a
/// reservation) is replayed on a fresh layout.
pub fn book_at(
    state: &mut MigState,
    slots: &mut GpuSlots,
    t: &SlicedType,
    placement: Placement,
) -> Result<GpuInstanceId, SlotError> {
    let no_gi = |reason: String| SlotError::NoGi {
        wanted: t.name.clone(),
        profile: t.gi_profile.0,
        placement,
        reason,
    };
    if let Some(gi) = state.gi_at(placement) {
        if gi.profile != t.gi_profile {
            return Err(no_gi(format!(
                "GI {} of profile {} is there",
                gi.id.0, gi.profile.0
            )));
        }
        let id = gi.id;
        if !slots.gis.iter().any(|g| g.gi == id) {
            // Not a time-sliced GI: it backs a whole-GI vGPU or runs processes.
            return Err(no_gi(format!(
                "GI {} there hosts no time-sliced vGPUs",
                id.0
            )));
        }
        slots.book_in(id, t)?;
        return Ok(id);
    }
    // `create_gi` changes nothing when it refuses; a GI it has just created is empty and
    // unused, so taking it back cannot fail.
    let id = state
        .create_gi(t.gi_profile, Some(placement))
        .map_err(|e| no_gi(e.to_string()))?;
    if let Err(e) = slots.add_gi(id, t.gi_profile) {
        let _ = state.destroy_gi(id);
        return Err(e);
    }
    if let Err(e) = slots.book_in(id, t) {
        slots.gis.retain(|g| g.gi != id);
        let _ = state.destroy_gi(id);
        return Err(e);
    }
    Ok(id)
}

/// Books one vGPU of `t` where the packing rule puts it ([`GpuSlots::choose`]), else in a new
/// GI at the best-fit placement ([`crate::planner::best_fit_placement`]). Returns the GI, its
/// placement and whether it was created; `None` when the GPU has no room for `t`.
pub fn book_best(
    state: &mut MigState,
    slots: &mut GpuSlots,
    t: &SlicedType,
) -> Option<(GpuInstanceId, Placement, bool)> {
    if let Some(gi) = slots.choose(t) {
        let placement = state.gpu_instance(gi)?.placement;
        slots.book_in(gi, t).ok()?;
        return Some((gi, placement, false));
    }
    let placement = crate::planner::best_fit_placement(state, t.gi_profile)?;
    let gi = book_at(state, slots, t, placement).ok()?;
    Some((gi, placement, true))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ty(name: &str, profile: u32, max: u32) -> SlicedType {
        SlicedType {
            name: name.into(),
            gi_profile: GiProfileId(profile),
            max_per_gi: MaxPerGi::new(max).unwrap(),
        }
    }

    #[test]
    fn fills_a_gi_slot_by_slot_until_refusal() {
        let t = ty("dc-1-8c", 19, 3);
        let mut gpu = GpuSlots::default();
        assert_eq!(
            gpu.place(&t),
            Err(SlotError::NoRoom {
                wanted: "dc-1-8c".into(),
                profile: 19
            })
        );
        gpu.add_gi(GpuInstanceId(1), GiProfileId(19)).unwrap();
        assert_eq!(gpu.capacity(&t, 0), 3);
        for used in 1..=3 {
            assert_eq!(gpu.place(&t), Ok(GpuInstanceId(1)));
            assert_eq!(gpu.used(&t), used);
            assert_eq!(gpu.capacity(&t, 0), 3 - used);
        }
        assert!(matches!(gpu.place(&t), Err(SlotError::NoRoom { .. })));
        let err = gpu.gis[0].add(&t).unwrap_err();
        assert_eq!(
            err.to_string(),
            "GI 1 already hosts 3 vGPUs of type dc-1-8c, the most the driver allows"
        );
        gpu.release(GpuInstanceId(1), &t).unwrap();
        assert_eq!(gpu.capacity(&t, 0), 1);
    }

    #[test]
    fn packs_into_the_fullest_gi_hosting_the_type_before_opening_one() {
        let a = ty("dc-1-8c", 19, 3);
        let b = ty("dc-1-12c", 19, 2);
        let mut gpu = GpuSlots::default();
        for gi in 1..=3 {
            gpu.add_gi(GpuInstanceId(gi), GiProfileId(19)).unwrap();
        }
        // GI 1 hosts b, GI 2 hosts one a, GI 3 two a: the next a goes to GI 3.
        gpu.gis[0].add(&b).unwrap();
        gpu.gis[1].add(&a).unwrap();
        gpu.gis[2].add(&a).unwrap();
        gpu.gis[2].add(&a).unwrap();
        assert_eq!(gpu.choose(&a), Some(GpuInstanceId(3)));
        assert_eq!(gpu.place(&a), Ok(GpuInstanceId(3)));
        // GI 3 is full: GI 2, not a new GI.
        assert_eq!(gpu.choose(&a), Some(GpuInstanceId(2)));
        // b never joins a GI of a.
        assert_eq!(gpu.choose(&b), Some(GpuInstanceId(1)));
        assert!(matches!(
            gpu.gis[1].add(&b),
            Err(SlotError::OtherType { .. })
        ));
        // Another profile's type fits nowhere here.
        let c = ty("dc-2-24c", 14, 1);
        assert_eq!(gpu.capacity(&c, 0), 0);
        assert_eq!(gpu.capacity(&c, 2), 2);
    }

    #[test]
    fn capacity_counts_gis_still_creatable() {
        let model = crate::GpuModel::by_key("a100-pcie-40gb").unwrap();
        let mut state = MigState::new(model);
        let p1g = model.gi_profile_by_name("1g.5gb").unwrap().id;
        let gi = state.create_gi(p1g, None).unwrap();
        let t = ty("example-1-5c", p1g.0, 2);
        let mut gpu = GpuSlots::default();
        gpu.add_gi(gi, p1g).unwrap();
        gpu.place(&t).unwrap();
        // One free slot in the GI, six more 1g GIs of two slots each.
        assert_eq!(capacity_on(&state, &gpu, &t).unwrap(), 1 + 6 * 2);
    }

    #[test]
    fn book_at_replays_a_decision_and_book_best_packs_then_opens() {
        let model = crate::GpuModel::by_key("rtx-pro-6000-bse-96gb").unwrap();
        let p1g = model.gi_profile_by_name("1g.24gb").unwrap().id;
        let p2g = model.gi_profile_by_name("2g.48gb").unwrap().id;
        let t = ty("dc-1-8c", p1g.0, 3);
        let mut state = MigState::new(model);
        let mut gpu = GpuSlots::default();
        // A new GI at 3:3, then two more vGPUs join it there; the fourth is refused.
        let at = Placement::new(3, 3);
        let gi = book_at(&mut state, &mut gpu, &t, at).unwrap();
        assert_eq!(state.gpu_instance(gi).unwrap().placement, at);
        for _ in 0..2 {
            assert_eq!(book_at(&mut state, &mut gpu, &t, at), Ok(gi));
        }
        let before = (state.clone(), gpu.clone());
        assert!(matches!(
            book_at(&mut state, &mut gpu, &t, at),
            Err(SlotError::Full { max: 3, .. })
        ));
        assert_eq!((state.clone(), gpu.clone()), before);
        // A whole-GI GI of another profile is no room, and a refusal changes nothing.
        let big = state.create_gi(p2g, Some(Placement::new(6, 6))).unwrap();
        let before_big = (state.clone(), gpu.clone());
        let e = book_at(&mut state, &mut gpu, &t, Placement::new(6, 3)).unwrap_err();
        assert!(e.to_string().contains("at 6:3"), "{e}");
        assert_eq!((state.clone(), gpu.clone()), before_big);
        assert!(state.gpu_instance(big).is_some());
        // The full GI is skipped: book_best opens a new GI at the best fit (0:3).
        let (gi2, p, created) = book_best(&mut state, &mut gpu, &t).unwrap();
        assert!(created && gi2 != gi);
        assert_eq!(p, Placement::new(0, 3));
        // The next one joins it instead of opening another.
        assert_eq!(book_best(&mut state, &mut gpu, &t), Some((gi2, p, false)));
        assert_eq!(book_best(&mut state, &mut gpu, &t), Some((gi2, p, false)));
        // Both 1g places left are taken by GIs (0:3, 3:3) and the 2g GI: no room.
        assert_eq!(book_best(&mut state, &mut gpu, &t), None);
    }

    #[test]
    fn zero_maximum_is_not_a_type() {
        assert!(MaxPerGi::new(0).is_none());
        assert!(serde_json::from_str::<MaxPerGi>("0").is_err());
        assert_eq!(serde_json::from_str::<MaxPerGi>("3").unwrap().get(), 3);
    }

    #[derive(Debug, Clone)]
    enum Op {
        NewGi,
        Place(usize),
        Release(usize, usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::NewGi),
            (0usize..2).prop_map(Op::Place),
            (0usize..8, 0usize..2).prop_map(|(g, t)| Op::Release(g, t)),
        ]
    }

    proptest! {
        /// Never over a per-GI maximum, one type per GI, capacity and placement agree, and
        /// a new GI is never needed while a GI hosting the type has a free slot.
        #[test]
        fn slots_stay_within_limits(maxes in (1u32..5, 1u32..5), ops in proptest::collection::vec(op(), 0..60)) {
            let types = [ty("a", 19, maxes.0), ty("b", 19, maxes.1)];
            let mut gpu = GpuSlots::default();
            let mut next = 0;
            for o in ops {
                match o {
                    Op::NewGi => {
                        next += 1;
                        gpu.add_gi(GpuInstanceId(next), GiProfileId(19)).unwrap();
                    }
                    Op::Place(t) => {
                        let t = &types[t];
                        let before = gpu.capacity(t, 0);
                        let used = gpu.used(t);
                        let hosting_free = gpu.gis.iter().any(|g| g.hosted.as_ref() == Some(t) && g.free_for(t) > 0);
                        match gpu.place(t) {
                            Ok(gi) => {
                                prop_assert!(before > 0);
                                prop_assert_eq!(gpu.capacity(t, 0), before - 1);
                                prop_assert_eq!(gpu.used(t), used + 1);
                                let g = gpu.gis.iter().find(|g| g.gi == gi).unwrap();
                                // Packing: an empty GI was opened only if no GI of t had room.
                                prop_assert!(g.used > 1 || !hosting_free);
                            }
                            Err(_) => prop_assert_eq!(before, 0),
                        }
                    }
                    Op::Release(g, t) => {
                        if let Some(gi) = gpu.gis.get(g).map(|g| g.gi) {
                            let _ = gpu.release(gi, &types[t]);
                        }
                    }
                }
                for g in &gpu.gis {
                    match &g.hosted {
                        Some(h) => prop_assert!(g.used >= 1 && g.used <= h.max_per_gi.get()),
                        None => prop_assert_eq!(g.used, 0),
                    }
                }
            }
        }

        /// On a real GPU's geometry (RTX PRO 6000, two types in `1g.24gb` and one in
        /// `2g.48gb`): `book_best` succeeds exactly when `capacity_on` is non-zero and lowers it
        /// by one; every GI it opens is one the modelled driver accepts (the state validates);
        /// no GI goes over its maximum or hosts two types; replaying a booking with `book_at`
        /// at the placement it returned succeeds while that GI has a free slot.
        #[test]
        fn booking_on_a_real_geometry_never_breaks_the_driver_rules(
            maxes in (2u32..5, 2u32..5, 2u32..4),
            ops in proptest::collection::vec((0usize..3, any::<bool>(), 0usize..8), 0..40),
        ) {
            let model = crate::GpuModel::by_key("rtx-pro-6000-bse-96gb").unwrap();
            let p1 = model.gi_profile_by_name("1g.24gb").unwrap().id;
            let p2 = model.gi_profile_by_name("2g.48gb").unwrap().id;
            let types = [ty("dc-1-8c", p1.0, maxes.0), ty("dc-1-12c", p1.0, maxes.1), ty("dc-2-24c", p2.0, maxes.2)];
            let mut state = MigState::new(model);
            let mut gpu = GpuSlots::default();
            for (t, book, gi) in ops {
                let t = &types[t];
                if book {
                    let before = capacity_on(&state, &gpu, t).unwrap();
                    match book_best(&mut state, &mut gpu, t) {
                        Some((gi, placement, _)) => {
                            prop_assert!(before > 0);
                            prop_assert_eq!(capacity_on(&state, &gpu, t).unwrap(), before - 1);
                            prop_assert_eq!(state.gpu_instance(gi).map(|g| g.placement), Some(placement));
                            let free = gpu.gis.iter().find(|g| g.gi == gi).unwrap().free_for(t);
                            let (mut s2, mut g2) = (state.clone(), gpu.clone());
                            prop_assert_eq!(book_at(&mut s2, &mut g2, t, placement).is_ok(), free > 0);
                        }
                        None => prop_assert_eq!(before, 0),
                    }
                } else if let Some(g) = gpu.gis.get(gi).map(|g| g.gi) {
                    let _ = gpu.release(g, t);
                }
                prop_assert!(state.validate().is_ok());
                for g in &gpu.gis {
                    prop_assert!(state.gpu_instance(g.gi).is_some_and(|i| i.profile == g.profile));
                    match &g.hosted {
                        Some(h) => prop_assert!(g.used >= 1 && g.used <= h.max_per_gi.get() && h.gi_profile == g.profile),
                        None => prop_assert_eq!(g.used, 0),
                    }
                }
            }
        }
    }
}
