//! Several vGPUs for one VM (issue 18): `vmig assign --profile A --profile B …` places every
//! type on one host, or none.
//!
//! NVIDIA allows a VM several vGPUs "with differing amounts of frame buffer … provided the
//! board type and the series of all the vGPUs are the same" (docs/mig-model.md, "Several
//! vGPUs per VM"); [`same_board_and_series`] refuses anything else before vmig plans.
//! [`place_all`] is the one placement rule: on one host, the largest types first (they have
//! the fewest placements), each at the best fit left by the ones before it; the same rule
//! plans and, under the host's lock, re-checks, so a single type is placed exactly as before.

use mig::vgpu_slots::SlicedType;
use mig::{GiProfileId, Placement, VgpuType};

use super::refuse;
use crate::analysis::HostAnalysis;
use crate::capacity::{Candidate, Choice, better, book, candidates};
use crate::{AdminError, RefusalKind};

/// One vGPU type asked for.
#[derive(Debug, Clone)]
pub(super) struct Wanted {
    /// Parsed.
    pub vtype: VgpuType,
    /// As the user typed it (replaced by the host's spelling once a host is chosen).
    pub spelled: String,
}

/// Where one wanted vGPU goes on the host [`place_all`] was given.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    /// Index into the host's `gpus`.
    pub gpu: usize,
    /// The GI profile backing the type on that GPU.
    pub profile: GiProfileId,
    /// Its name (`3g.20gb`).
    pub profile_name: String,
    /// Placement and what it leaves.
    pub choice: Choice,
    /// The type as that GPU runs it time-sliced inside GIs (issue 18), if it does.
    pub sliced: Option<SlicedType>,
}

impl Placed {
    /// Where `c`'s best choice puts the vGPU; `None` when nothing fits there.
    pub fn from_candidate(c: &Candidate<'_>) -> Option<Placed> {
        Some(Placed {
            gpu: c.gpu,
            profile: c.profile,
            profile_name: c
                .state
                .gpu_model()
                .gi_profile(c.profile)
                .map(|p| p.name.to_string())
                .unwrap_or_default(),
            choice: c.choice()?,
            sliced: c.sliced.clone(),
        })
    }

    /// The placement.
    pub fn placement(&self) -> Placement {
        self.choice.placement
    }
}

/// Refuses a list of types that one VM may not carry together: every type must share the
/// first one's board and series (NVIDIA's rule for several vGPUs in one VM).
pub(super) fn same_board_and_series(vm: &str, wanted: &[Wanted]) -> Result<(), AdminError> {
    let Some(first) = wanted.first() else {
        return Err(AdminError::Internal("assign without a vGPU type".into()));
    };
    // The series is the suffix's first letter (`c` of `c`, `cme`); the attribute after it
    // (`me`, `gfx`) names the GI profile's extras, not a series.
    let series = |w: &Wanted| w.vtype.suffix.chars().next();
    for w in &wanted[1..] {
        if w.vtype.board != first.vtype.board || series(w) != series(first) {
            return Err(refuse(
                RefusalKind::OtherVgpu,
                vm,
                None,
                format!(
                    "VM {vm}: vGPU types {} and {} cannot share one VM (NVIDIA allows several vGPUs in a VM only when all have the same board and series); pass types of one board and series",
                    first.spelled, w.spelled
                ),
            ));
        }
    }
    Ok(())
}

/// Every wanted type placed on one host, and what that leaves.
#[derive(Debug, Clone)]
pub(super) struct Fit {
    /// In the order of `wanted`.
    pub placed: Vec<Placed>,
    /// Summed fragmentation of the GPUs used, after all placements (lower is better).
    pub fragmentation: f64,
}

/// Places every wanted type on `host` (its GPUs as analysed, reservations counted), largest
/// first, each at the best fit left; `None` when one of them does not fit.
pub(super) fn place_all(host: &HostAnalysis, wanted: &[Wanted]) -> Option<Fit> {
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    // Largest first: a big GI has few placements, small ones fill around it. Stable, so
    // equal sizes keep the user's order.
    order.sort_by_key(|&i| std::cmp::Reverse(wanted[i].vtype.mig_slices.unwrap_or(0)));
    let mut scratch = host.clone();
    let mut out: Vec<Option<Placed>> = vec![None; wanted.len()];
    for i in order {
        let placed = {
            let cands = candidates([&scratch], &wanted[i].vtype);
            let best = cands
                .iter()
                .filter(|c| c.choice().is_some())
                .min_by(|a, b| better(a, b))?;
            Placed::from_candidate(best)?
        };
        let gpu = &mut scratch.gpus[placed.gpu];
        book(
            gpu.state.as_mut()?,
            &mut gpu.slots,
            placed.profile,
            placed.sliced.as_ref(),
            &placed.choice,
        )?;
        out[i] = Some(placed);
    }
    let placed: Vec<Placed> = out.into_iter().collect::<Option<_>>()?;
    let mut used: Vec<usize> = placed.iter().map(|p| p.gpu).collect();
    used.sort_unstable();
    used.dedup();
    let fragmentation = used
        .iter()
        .filter_map(|&g| scratch.gpus[g].state.as_ref())
        .map(mig::MigState::fragmentation)
        .sum();
    Some(Fit {
        placed,
        fragmentation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str) -> Wanted {
        Wanted {
            vtype: VgpuType::parse(name).unwrap(),
            spelled: name.into(),
        }
    }

    #[test]
    fn one_board_and_series_only() {
        let ok = [
            w("grid_a100-4-20c"),
            w("grid_a100-2-10c"),
            w("grid_a100-1-5cme"),
        ];
        assert!(same_board_and_series("vm", &ok).is_ok());
        for bad in [
            [w("grid_a100-3-20c"), w("grid_a100d-1-10c")],
            [w("grid_a100-3-20c"), w("grid_a100-2-10q")],
        ] {
            let Err(AdminError::Refused(r)) = same_board_and_series("vm", &bad) else {
                panic!("{bad:?} accepted");
            };
            assert!(r.message.contains("board and series"), "{}", r.message);
        }
    }
}
