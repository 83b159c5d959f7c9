//! Whether a state *is* a desired layout. Used to decide "nothing to do" without planning, and
//! by tests as the definition of "the plan reached the layout".
use crate::ids::{CiProfileId, GiProfileId, Placement};
use crate::state::MigState;

use super::DesiredLayout;

/// One GI reduced to what a layout talks about.
type Shape = (GiProfileId, Placement, Vec<CiProfileId>);

pub(super) fn is_satisfied_by(desired: &DesiredLayout, state: &MigState) -> bool {
    if desired.gpu_instances.len() != state.gpu_instances.len() {
        return false;
    }
    let model = state.gpu_model();
    let mut wanted = Vec::with_capacity(desired.gpu_instances.len());
    for d in &desired.gpu_instances {
        let Some(profile) = model.gi_profile(d.profile) else {
            return false;
        };
        let Ok(split) = super::ci::canonical_split(profile, &d.compute) else {
            return false;
        };
        wanted.push((d.profile, d.placement, split));
    }
    let have: Vec<Shape> = state
        .gpu_instances
        .values()
        .map(|gi| {
            let mut cis: Vec<CiProfileId> =
                gi.compute_instances.values().map(|c| c.profile).collect();
            cis.sort();
            (gi.profile, gi.placement, cis)
        })
        .collect();
    let mut used = vec![false; have.len()];
    pair(&wanted, &have, &mut used)
}

/// Backtracking perfect matching (pinned wants are tried first so they are not starved).
fn pair(
    wanted: &[(GiProfileId, Option<Placement>, Vec<CiProfileId>)],
    have: &[Shape],
    used: &mut [bool],
) -> bool {
    let Some(((profile, pin, split), rest)) = wanted.split_first() else {
        return true;
    };
    for (i, (hp, hpl, hcis)) in have.iter().enumerate() {
        if used[i] || hp != profile || hcis != split || pin.is_some_and(|p| p != *hpl) {
            continue;
        }
        used[i] = true;
        if pair(rest, have, used) {
            return true;
        }
        used[i] = false;
    }
    false
}
