//! Compute-instance splits inside one GI: which CIs to destroy and in which order to create
//! the missing ones. CIs are created without a placement (the driver takes the first free legal
//! one), so the creation order decides whether a split fits (e.g. `1c` first can block a `2c`);
//! orders are tried largest first, then every other distinct order, each on a scratch copy of
//! the state with the real `MigState` operations.
use std::cmp::Reverse;

use crate::catalog::{GiProfile, GpuModel};
use crate::ids::{CiProfileId, ComputeInstanceId, GpuInstanceId};
use crate::state::{GpuInstance, MigState};

use super::PlanError;

/// Upper bound on creation orders tried for one split; a GI has at most 8 compute slices, so
/// real splits have far fewer distinct orders (8 distinct CIs would be 40,320).
const MAX_ORDERS: usize = 50_000;

/// CI changes inside a kept GI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CiChange {
    /// CIs to destroy (never in-use ones), in id order.
    pub destroy: Vec<ComputeInstanceId>,
    /// CI profiles to create, in this order.
    pub create: Vec<CiProfileId>,
}

impl CiChange {
    /// Steps this change costs.
    pub fn cost(&self) -> usize {
        self.destroy.len() + self.create.len()
    }
}

/// The canonical CI multiset of a desired GI (sorted by id; empty means the default CI).
pub(super) fn canonical_split(
    gi: &'static GiProfile,
    compute: &[CiProfileId],
) -> Result<Vec<CiProfileId>, PlanError> {
    if compute.is_empty() {
        return Ok(vec![gi.default_ci_profile().id]);
    }
    let mut split = Vec::with_capacity(compute.len());
    for &ci in compute {
        if gi.ci_profile(ci).is_none() {
            return Err(PlanError::UnknownCiProfile { gi: gi.id, ci });
        }
        split.push(ci);
    }
    split.sort();
    Ok(split)
}

/// A creation order for `split` inside a fresh GI of `gi`, or a sentence saying why none exists.
pub(super) fn fresh_order(
    model: &'static GpuModel,
    gi: &'static GiProfile,
    split: &[CiProfileId],
) -> Result<Vec<CiProfileId>, String> {
    let names = split_names(gi, split);
    let slices: u32 = split
        .iter()
        .filter_map(|c| gi.ci_profile(*c))
        .map(|c| c.compute_slices)
        .sum();
    if slices > gi.compute_slices {
        return Err(format!(
            "CI split {names} needs {slices} compute slices; a {} GI has {}",
            gi.name, gi.compute_slices
        ));
    }
    for c in gi.ci_profiles {
        let n = split.iter().filter(|id| **id == c.id).count();
        if n > c.instance_count as usize {
            return Err(format!(
                "CI split {names} asks for {n} × {}; a {} GI allows at most {}",
                c.name, gi.name, c.instance_count
            ));
        }
    }
    let Some(&placement) = gi.placements.first() else {
        return Err(format!("GI profile {} has no legal placement", gi.name));
    };
    let mut scratch = MigState::new(model);
    let id = scratch
        .create_gi(gi.id, Some(placement))
        .map_err(|e| format!("cannot create a {} GI on an empty GPU: {e}", gi.name))?;
    creation_order(&scratch, id, gi, split).ok_or_else(|| {
        format!(
            "CI split {names} does not fit in a {} GI: no arrangement of its CI placements holds them all",
            gi.name
        )
    })
}

/// The cheapest change turning the CIs of the existing `gi` into `split` without destroying an
/// in-use CI, or `None` when there is none. Fewest destroys first (each kept CI saves a destroy
/// and a create), then the lowest CI ids are kept.
pub(super) fn change_for(
    current: &MigState,
    gi: &GpuInstance,
    profile: &'static GiProfile,
    split: &[CiProfileId],
) -> Option<CiChange> {
    let cis: Vec<_> = gi.compute_instances.values().collect();
    if gi.is_in_use() {
        // A GI that runs processes or backs an active vGPU is never touched, not even its idle
        // CIs (the vGPU manager or the guest owns them): keep it only as it already is.
        let mut have: Vec<CiProfileId> = cis.iter().map(|c| c.profile).collect();
        let mut want = split.to_vec();
        have.sort_unstable();
        want.sort_unstable();
        return (have == want).then(|| CiChange {
            destroy: Vec::new(),
            create: Vec::new(),
        });
    }
    let in_use: Vec<CiProfileId> = cis.iter().filter(|c| c.in_use).map(|c| c.profile).collect();
    if !is_sub_multiset(&in_use, split) {
        return None;
    }
    let free: Vec<_> = cis.iter().filter(|c| !c.in_use).collect();
    if free.len() > 16 {
        return None; // impossible on real geometry (≤ 8 compute slices); keeps the subsets bounded
    }
    // Subsets of destroyable CIs by size; within a size, ones destroying higher ids first.
    let mut subsets: Vec<u32> = (0..(1u32 << free.len())).collect();
    subsets.sort_by_key(|m| (m.count_ones(), Reverse(*m)));
    for mask in subsets {
        let kept: Vec<CiProfileId> = in_use
            .iter()
            .copied()
            .chain(
                free.iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) == 0)
                    .map(|(_, c)| c.profile),
            )
            .collect();
        if !is_sub_multiset(&kept, split) {
            continue;
        }
        let destroy: Vec<ComputeInstanceId> = free
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, c)| c.id)
            .collect();
        let to_create = multiset_minus(split, &kept);
        if to_create.is_empty() {
            return Some(CiChange {
                destroy,
                create: Vec::new(),
            });
        }
        let mut scratch = current.clone();
        if destroy
            .iter()
            .any(|ci| scratch.destroy_ci(gi.id, *ci).is_err())
        {
            continue;
        }
        if let Some(create) = creation_order(&scratch, gi.id, profile, &to_create) {
            return Some(CiChange { destroy, create });
        }
    }
    None
}

/// An order in which `to_create` can be created (auto-placed) in GI `gi` of `base`.
fn creation_order(
    base: &MigState,
    gi: GpuInstanceId,
    profile: &'static GiProfile,
    to_create: &[CiProfileId],
) -> Option<Vec<CiProfileId>> {
    let key = |c: &CiProfileId| {
        let slices = profile.ci_profile(*c).map_or(0, |p| p.compute_slices);
        (Reverse(slices), *c)
    };
    let mut order = to_create.to_vec();
    order.sort_by_key(key);
    for _ in 0..MAX_ORDERS {
        let mut scratch = base.clone();
        if order
            .iter()
            .all(|c| scratch.create_ci(gi, *c, None).is_ok())
        {
            return Some(order);
        }
        if !next_permutation(&mut order, key) {
            return None;
        }
    }
    None
}

/// Rearranges `v` into the next lexicographic permutation by `key`; false after the last one.
/// Equal keys are not distinguished, so a multiset's distinct orders are each visited once.
fn next_permutation<T, K: Ord>(v: &mut [T], key: impl Fn(&T) -> K) -> bool {
    if v.len() < 2 {
        return false;
    }
    let mut i = v.len() - 1;
    while i > 0 && key(&v[i - 1]) >= key(&v[i]) {
        i -= 1;
    }
    if i == 0 {
        return false;
    }
    let mut j = v.len() - 1;
    while key(&v[j]) <= key(&v[i - 1]) {
        j -= 1;
    }
    v.swap(i - 1, j);
    v[i..].reverse();
    true
}

/// Whether every element of `small` (with multiplicity) is in `big`.
pub(super) fn is_sub_multiset(small: &[CiProfileId], big: &[CiProfileId]) -> bool {
    let mut rest = big.to_vec();
    small
        .iter()
        .all(|s| match rest.iter().position(|b| b == s) {
            Some(i) => {
                rest.swap_remove(i);
                true
            }
            None => false,
        })
}

/// `big` without the elements of `small` (with multiplicity), order of `big` kept.
fn multiset_minus(big: &[CiProfileId], small: &[CiProfileId]) -> Vec<CiProfileId> {
    let mut rest = small.to_vec();
    big.iter()
        .filter(|b| match rest.iter().position(|s| s == *b) {
            Some(i) => {
                rest.swap_remove(i);
                false
            }
            None => true,
        })
        .copied()
        .collect()
}

/// `1c.3g.20gb ×2 + 2c.3g.20gb`-style list of a split.
pub(super) fn split_names(gi: &GiProfile, split: &[CiProfileId]) -> String {
    let names: Vec<String> = split
        .iter()
        .map(|c| {
            gi.ci_profile(*c)
                .map_or_else(|| format!("CI profile {}", c.0), |p| p.name.to_string())
        })
        .collect();
    count_list(&names)
}

/// `3g.20gb ×2 + 4g.20gb`: names with multiplicities, in order of first appearance.
pub(super) fn count_list(names: &[String]) -> String {
    let mut counted: Vec<(&str, usize)> = Vec::new();
    for n in names {
        match counted.iter_mut().find(|(m, _)| m == n) {
            Some((_, c)) => *c += 1,
            None => counted.push((n, 1)),
        }
    }
    if counted.is_empty() {
        return "nothing".to_string();
    }
    counted
        .iter()
        .map(|(n, c)| {
            if *c == 1 {
                (*n).to_string()
            } else {
                format!("{n} ×{c}")
            }
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_permutation_visits_distinct_orders_once() {
        let mut v = vec![1, 1, 2];
        let mut seen = vec![v.clone()];
        while next_permutation(&mut v, |x| *x) {
            seen.push(v.clone());
        }
        assert_eq!(seen, vec![vec![1, 1, 2], vec![1, 2, 1], vec![2, 1, 1]]);
    }

    #[test]
    fn multiset_helpers() {
        let a = [CiProfileId(0), CiProfileId(0), CiProfileId(1)];
        assert!(is_sub_multiset(&[CiProfileId(0), CiProfileId(1)], &a));
        assert!(!is_sub_multiset(&[CiProfileId(1), CiProfileId(1)], &a));
        assert_eq!(
            multiset_minus(&a, &[CiProfileId(0)]),
            vec![CiProfileId(0), CiProfileId(1)]
        );
    }
}
