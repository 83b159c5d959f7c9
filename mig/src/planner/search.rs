//! The exact search behind [`plan`](super::plan).
//!
//! Two nested searches, both exhaustive over spaces that real GPUs keep tiny (≤ 8 GIs, ≤ 8
//! memory slices):
//! 1. **Keep or destroy** (branch and bound): every existing GI is matched to a desired GI
//!    (kept, CIs changed if needed), destroyed (never when in use), or — only when allowed —
//!    kept outside the layout. The cost of a choice vector is its number of steps and does not
//!    depend on where new GIs go, so choice vectors are enumerated depth-first in preference
//!    order and a branch is cut as soon as a lower bound on its cost reaches the best found.
//! 2. **Placement** (backtracking, memoised per kept set and remaining multiset): the desired
//!    GIs not served by a kept GI are placed on a scratch state that holds only the kept GIs,
//!    pinned ones first, then largest first, each trying its legal placements in the modelled
//!    driver's auto-placement order (lowest GI id first: right half of the GPU first). Every
//!    candidate is checked by `MigState::create_gi` itself, so overlaps, instance caps and
//!    media-engine singletons are the simulator's rules. Identical desired GIs only take
//!    placements in increasing preference order, so permutations of equal GIs are not revisited.
//!
//! Plans are compared by (in-use GIs left outside the layout, steps, GI destroys); remaining
//! ties are broken deterministically by the enumeration order: existing GIs in id order, each
//! preferring to be kept (for the first compatible desired group in search order) over being
//! destroyed, then the placement order above.
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::HashMap;

use crate::catalog::{GiProfile, GpuModel};
use crate::ids::{CiProfileId, ComputeInstanceId, GpuInstanceId, Placement};
use crate::state::MigState;

use super::ci::{self, CiChange};
use super::{DesiredGi, DesiredLayout, Plan, PlanError, PlanOutcome, Step};

/// Desired layouts larger than this are refused outright (a GPU holds at most one GI per
/// memory slice; this only bounds the work on nonsense input).
const MAX_DESIRED: usize = 64;
/// Bound on the alternatives `allow_partial` may enumerate.
const MAX_DROP_VECTORS: u128 = 1 << 16;

/// Desired GIs that are interchangeable: same profile, same pin, same CI split.
#[derive(Debug)]
pub(super) struct Group {
    pub profile: &'static GiProfile,
    pub pin: Option<Placement>,
    /// Canonical CI multiset (sorted ids; the default CI when the layout left it empty).
    pub split: Vec<CiProfileId>,
    /// Order in which to create `split` in a fresh GI.
    pub order: Vec<CiProfileId>,
    /// Indices into the desired layout, in layout order.
    pub members: Vec<usize>,
    /// Placements to try, in preference order.
    candidates: Vec<Placement>,
}

impl Group {
    fn create_cost(&self) -> usize {
        1 + self.order.len()
    }
}

/// An existing GI and how it could serve each group.
#[derive(Debug)]
pub(super) struct Existing {
    pub id: GpuInstanceId,
    pub profile: &'static GiProfile,
    pub placement: Placement,
    pub in_use: bool,
    pub ci_ids: Vec<ComputeInstanceId>,
    /// Per group: the CI change that makes this GI serve it, if it can.
    pub matches: Vec<Option<CiChange>>,
}

/// What happens to one existing GI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Choice {
    /// Kept and serving a member of this group.
    Match(usize),
    /// Destroyed with its CIs.
    Destroy,
    /// In use, kept although not part of the layout.
    Extra,
}

/// Search parameters.
#[derive(Debug)]
pub(super) struct Params<'p> {
    /// How many members of each group to reach.
    pub counts: &'p [usize],
    /// Whether in-use GIs may stay outside the layout.
    pub allow_extra: bool,
    /// Existing GIs (by index) treated as destroyable although in use: diagnosis only.
    pub destroyable: u64,
}

/// A complete choice: what happens to each existing GI and where new GIs go.
#[derive(Debug, Clone)]
pub(super) struct Solution {
    pub choices: Vec<Choice>,
    /// New GIs in creation order: (group, placement).
    pub placed: Vec<(usize, Placement)>,
}

type Key = (usize, usize, usize);
type Placed = Option<Vec<(usize, Placement)>>;

/// A planning problem: one current state, one desired layout, everything precomputed.
#[derive(Debug)]
pub(super) struct Problem<'a> {
    pub model: &'static GpuModel,
    pub current: &'a MigState,
    pub desired: &'a DesiredLayout,
    pub groups: Vec<Group>,
    pub existing: Vec<Existing>,
    memo: RefCell<HashMap<(u64, Vec<usize>), Placed>>,
}

impl<'a> Problem<'a> {
    /// Validate the layout and precompute groups, CI orders and possible matches.
    pub fn new(current: &'a MigState, desired: &'a DesiredLayout) -> Result<Self, PlanError> {
        let model = current.gpu_model();
        let n = desired.gpu_instances.len();
        if n > MAX_DESIRED {
            return Err(PlanError::Infeasible(format!(
                "the layout lists {n} GPU instances; a {} holds at most {}",
                model.short_name, model.memory_slices
            )));
        }
        let mut groups: Vec<Group> = Vec::new();
        for (index, d) in desired.gpu_instances.iter().enumerate() {
            let profile = model
                .gi_profile(d.profile)
                .ok_or(PlanError::UnknownProfile(d.profile))?;
            if let Some(p) = d.placement
                && !profile.placements.contains(&p)
            {
                return Err(PlanError::InvalidPlacement {
                    profile: d.profile,
                    placement: p,
                });
            }
            let split = ci::canonical_split(profile, &d.compute)?;
            match groups
                .iter_mut()
                .find(|g| g.profile.id == profile.id && g.pin == d.placement && g.split == split)
            {
                Some(g) => g.members.push(index),
                None => {
                    let order =
                        ci::fresh_order(model, profile, &split).map_err(PlanError::Infeasible)?;
                    let candidates = match d.placement {
                        Some(p) => vec![p],
                        None => preference_order(model, profile),
                    };
                    groups.push(Group {
                        profile,
                        pin: d.placement,
                        split,
                        order,
                        members: vec![index],
                        candidates,
                    });
                }
            }
        }
        // Pinned GIs first (no choice), then the hardest to place: largest first.
        groups.sort_by(|a, b| {
            let key = |g: &Group| {
                (
                    g.pin.is_none(),
                    Reverse(g.profile.memory_slices),
                    Reverse(g.profile.compute_slices),
                    g.profile.id,
                    g.pin,
                    g.split.clone(),
                )
            };
            key(a).cmp(&key(b))
        });

        if current.gpu_instances.len() > 64 {
            return Err(PlanError::Internal(format!(
                "the current state has {} GPU instances",
                current.gpu_instances.len()
            )));
        }
        let mut existing = Vec::with_capacity(current.gpu_instances.len());
        for gi in current.gpu_instances.values() {
            let profile = model.gi_profile(gi.profile).ok_or_else(|| {
                PlanError::Internal(format!(
                    "GI {} has profile {} unknown to {}",
                    gi.id.0, gi.profile.0, model.key
                ))
            })?;
            let matches = groups
                .iter()
                .map(|g| {
                    let compatible =
                        g.profile.id == gi.profile && g.pin.is_none_or(|p| p == gi.placement);
                    if compatible {
                        ci::change_for(current, gi, profile, &g.split)
                    } else {
                        None
                    }
                })
                .collect();
            existing.push(Existing {
                id: gi.id,
                profile,
                placement: gi.placement,
                in_use: gi.is_in_use(),
                ci_ids: gi.compute_instances.keys().copied().collect(),
                matches,
            });
        }
        Ok(Problem {
            model,
            current,
            desired,
            groups,
            existing,
            memo: RefCell::new(HashMap::new()),
        })
    }

    /// Every desired GI.
    pub fn full_counts(&self) -> Vec<usize> {
        self.groups.iter().map(|g| g.members.len()).collect()
    }

    /// The plan that reaches the most desired GIs while keeping in-use GIs outside the layout.
    pub fn solve_partial(&self) -> Result<PlanOutcome, PlanError> {
        let full = self.full_counts();
        // Members beyond a profile's instance cap can never be placed: drop them up front so the
        // enumeration below stays small.
        let mut capped = full.clone();
        for p in self.model.gi_profiles {
            let mut room = p.instance_count as usize;
            for (g, c) in self.groups.iter().zip(capped.iter_mut()) {
                if g.profile.id == p.id {
                    *c = (*c).min(room);
                    room -= *c;
                }
            }
        }
        let alternatives: u128 = capped.iter().map(|c| *c as u128 + 1).product();
        if alternatives > MAX_DROP_VECTORS {
            return Err(PlanError::Infeasible(format!(
                "the layout has too many distinct GPU instances ({}) to choose which to leave out; \
                 list fewer (a {} holds at most {})",
                self.groups.len(),
                self.model.short_name,
                self.model.memory_slices
            )));
        }
        let max_keep: usize = capped.iter().sum();
        for keep in (0..=max_keep).rev() {
            for counts in self.subsets_keeping(&capped, keep) {
                if !self.fits_empty(&counts) {
                    continue;
                }
                let params = Params {
                    counts: &counts,
                    allow_extra: true,
                    destroyable: 0,
                };
                if let Some(solution) = self.solve(&params) {
                    return Ok(self.outcome(&solution, &counts));
                }
            }
        }
        // Keeping nothing always works: destroy every idle GI, keep the in-use ones.
        Err(PlanError::Internal(
            "no partial plan found, not even the empty one".into(),
        ))
    }

    /// Count vectors `≤ capped` summing to `keep`, best first: fewest memory slices dropped,
    /// then dropping the GIs listed last in the layout.
    fn subsets_keeping(&self, capped: &[usize], keep: usize) -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        let mut cur = vec![0; capped.len()];
        fn rec(
            i: usize,
            left: usize,
            capped: &[usize],
            cur: &mut Vec<usize>,
            out: &mut Vec<Vec<usize>>,
        ) {
            if i == capped.len() {
                if left == 0 {
                    out.push(cur.clone());
                }
                return;
            }
            let rest: usize = capped[i + 1..].iter().sum();
            for c in (0..=capped[i].min(left)).rev() {
                if left - c > rest {
                    break;
                }
                cur[i] = c;
                rec(i + 1, left - c, capped, cur, out);
            }
            cur[i] = 0;
        }
        rec(0, keep, capped, &mut cur, &mut out);
        out.sort_by_cached_key(|counts| {
            let dropped = self.dropped_indices(counts);
            let slices: u32 = dropped
                .iter()
                .filter_map(|i| {
                    self.model
                        .gi_profile(self.desired.gpu_instances[*i].profile)
                })
                .map(|p| p.memory_slices)
                .sum();
            let mut latest_first = dropped;
            latest_first.sort_unstable_by(|a, b| b.cmp(a));
            (slices, Reverse(latest_first))
        });
        out
    }

    /// Desired indices left out when only `counts` of each group are reached (the last
    /// members of each group in layout order).
    fn dropped_indices(&self, counts: &[usize]) -> Vec<usize> {
        let mut dropped: Vec<usize> = self
            .groups
            .iter()
            .zip(counts)
            .flat_map(|(g, c)| g.members[*c..].iter().copied())
            .collect();
        dropped.sort_unstable();
        dropped
    }

    /// Whether `counts` of each group fit an empty GPU.
    pub fn fits_empty(&self, counts: &[usize]) -> bool {
        self.place(0, counts).is_some()
    }

    /// The best solution for `params`, if any.
    pub fn solve(&self, params: &Params<'_>) -> Option<Solution> {
        let mut best = None;
        let mut choices = Vec::with_capacity(self.existing.len());
        let mut matched = vec![0; self.groups.len()];
        self.branch(params, &mut choices, &mut matched, (0, 0, 0), &mut best);
        best.map(|(_, solution)| solution)
    }

    fn branch(
        &self,
        params: &Params<'_>,
        choices: &mut Vec<Choice>,
        matched: &mut [usize],
        acc: Key,
        best: &mut Option<(Key, Solution)>,
    ) {
        let i = choices.len();
        if i == self.existing.len() {
            let remaining: Vec<usize> = params
                .counts
                .iter()
                .zip(matched.iter())
                .map(|(c, m)| c - m)
                .collect();
            let create: usize = remaining
                .iter()
                .zip(&self.groups)
                .map(|(r, g)| r * g.create_cost())
                .sum();
            let key = (acc.0, acc.1 + create, acc.2);
            if best.as_ref().is_some_and(|(b, _)| key >= *b) {
                return;
            }
            let kept = choices
                .iter()
                .enumerate()
                .filter(|(_, c)| !matches!(c, Choice::Destroy))
                .fold(0u64, |m, (j, _)| m | 1 << j);
            if let Some(placed) = self.place(kept, &remaining) {
                *best = Some((
                    key,
                    Solution {
                        choices: choices.clone(),
                        placed,
                    },
                ));
            }
            return;
        }
        if best
            .as_ref()
            .is_some_and(|(b, _)| self.lower_bound(params, i, matched, acc) >= *b)
        {
            return;
        }
        let e = &self.existing[i];
        for (g, change) in e.matches.iter().enumerate() {
            let Some(change) = change else { continue };
            if matched[g] >= params.counts[g] {
                continue;
            }
            matched[g] += 1;
            choices.push(Choice::Match(g));
            self.branch(
                params,
                choices,
                matched,
                (acc.0, acc.1 + change.cost(), acc.2),
                best,
            );
            choices.pop();
            matched[g] -= 1;
        }
        if self.destroyable(params, i) {
            choices.push(Choice::Destroy);
            self.branch(
                params,
                choices,
                matched,
                (acc.0, acc.1 + e.ci_ids.len() + 1, acc.2 + 1),
                best,
            );
            choices.pop();
        }
        if e.in_use && params.allow_extra {
            choices.push(Choice::Extra);
            self.branch(params, choices, matched, (acc.0 + 1, acc.1, acc.2), best);
            choices.pop();
        }
    }

    fn destroyable(&self, params: &Params<'_>, i: usize) -> bool {
        !self.existing[i].in_use || params.destroyable & (1 << i) != 0
    }

    /// A lower bound on the key of any completion of the first `i` choices.
    fn lower_bound(&self, params: &Params<'_>, i: usize, matched: &[usize], acc: Key) -> Key {
        let rest = &self.existing[i..];
        let mut cost = acc.1;
        for (j, e) in rest.iter().enumerate() {
            let mut min = usize::MAX;
            for (g, change) in e.matches.iter().enumerate() {
                if let Some(change) = change
                    && matched[g] < params.counts[g]
                {
                    min = min.min(change.cost());
                }
            }
            if self.destroyable(params, i + j) {
                min = min.min(e.ci_ids.len() + 1);
            }
            if e.in_use && params.allow_extra {
                min = 0;
            }
            if min != usize::MAX {
                cost += min;
            }
        }
        for (g, group) in self.groups.iter().enumerate() {
            let can_match = rest.iter().filter(|e| e.matches[g].is_some()).count();
            let unserved = (params.counts[g] - matched[g]).saturating_sub(can_match);
            cost += unserved * group.create_cost();
        }
        (acc.0, cost, acc.2)
    }

    /// Place `remaining` members of each group next to the existing GIs in `kept` (a mask over
    /// `existing`). Memoised: many choice vectors share a kept set and a remaining multiset.
    fn place(&self, kept: u64, remaining: &[usize]) -> Placed {
        let key = (kept, remaining.to_vec());
        if let Some(hit) = self.memo.borrow().get(&key) {
            return hit.clone();
        }
        let result = self.place_uncached(kept, remaining);
        self.memo.borrow_mut().insert(key, result.clone());
        result
    }

    fn place_uncached(&self, kept: u64, remaining: &[usize]) -> Placed {
        let kept_ids: Vec<GpuInstanceId> = self
            .existing
            .iter()
            .enumerate()
            .filter(|(j, _)| kept & (1 << j) != 0)
            .map(|(_, e)| e.id)
            .collect();
        // The state as it is after the plan's destroys (CIs do not affect GI placement).
        let mut state = self.current.clone();
        state.gpu_instances.retain(|id, _| kept_ids.contains(id));
        let occupied = state
            .gpu_instances
            .values()
            .fold(0u64, |m, gi| m | gi.placement.mask());
        let items: Vec<usize> = remaining
            .iter()
            .enumerate()
            .flat_map(|(g, n)| std::iter::repeat_n(g, *n))
            .collect();
        // needed[k] = memory slices still needed by items k.. (for pruning).
        let mut needed = vec![0u32; items.len() + 1];
        for k in (0..items.len()).rev() {
            needed[k] = needed[k + 1] + self.groups[items[k]].profile.memory_slices;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut dfs = Dfs {
            problem: self,
            items: &items,
            needed: &needed,
            out: &mut out,
        };
        if dfs.run(&mut state, occupied, 0, 0) {
            Some(out)
        } else {
            None
        }
    }

    /// Turn a solution into the outcome: steps in the documented order.
    pub(super) fn outcome(&self, solution: &Solution, counts: &[usize]) -> PlanOutcome {
        let mut steps = Vec::new();
        for (e, choice) in self.existing.iter().zip(&solution.choices) {
            let destroy: &[ComputeInstanceId] = match choice {
                Choice::Match(g) => e.matches[*g].as_ref().map_or(&[], |c| &c.destroy),
                Choice::Destroy => &e.ci_ids,
                Choice::Extra => &[],
            };
            steps.extend(
                destroy
                    .iter()
                    .map(|ci| Step::DestroyCi { gi: e.id, ci: *ci }),
            );
        }
        for (e, choice) in self.existing.iter().zip(&solution.choices) {
            if *choice == Choice::Destroy {
                steps.push(Step::DestroyGi { gi: e.id });
            }
        }
        for (g, placement) in &solution.placed {
            steps.push(Step::CreateGi {
                profile: self.groups[*g].profile.id,
                placement: *placement,
            });
        }
        for (e, choice) in self.existing.iter().zip(&solution.choices) {
            if let Choice::Match(g) = choice
                && let Some(change) = &e.matches[*g]
            {
                steps.extend(change.create.iter().map(|ci| Step::CreateCi {
                    gi_placement: e.placement,
                    profile: *ci,
                }));
            }
        }
        for (g, placement) in &solution.placed {
            steps.extend(self.groups[*g].order.iter().map(|ci| Step::CreateCi {
                gi_placement: *placement,
                profile: *ci,
            }));
        }
        let kept = self
            .existing
            .iter()
            .zip(&solution.choices)
            .filter(|(_, c)| **c != Choice::Destroy)
            .map(|(e, _)| e.id)
            .collect();
        let in_use_outside = self
            .existing
            .iter()
            .zip(&solution.choices)
            .filter(|(_, c)| **c == Choice::Extra)
            .map(|(e, _)| e.id)
            .collect();
        let dropped: Vec<DesiredGi> = self
            .dropped_indices(counts)
            .into_iter()
            .map(|i| self.desired.gpu_instances[i].clone())
            .collect();
        PlanOutcome {
            plan: Plan { steps, kept },
            dropped,
            in_use_outside,
        }
    }

    /// Desired GIs (index, profile, pin) for the given counts, in layout order.
    pub fn items(&self, counts: &[usize]) -> Vec<(usize, &'static GiProfile, Option<Placement>)> {
        let mut items: Vec<_> = self
            .groups
            .iter()
            .zip(counts)
            .flat_map(|(g, c)| g.members[..*c].iter().map(move |i| (*i, g.profile, g.pin)))
            .collect();
        items.sort_by_key(|(i, _, _)| *i);
        items
    }
}

/// The placement backtracking of one (kept set, remaining multiset).
struct Dfs<'s, 'p> {
    problem: &'s Problem<'p>,
    items: &'s [usize],
    needed: &'s [u32],
    out: &'s mut Vec<(usize, Placement)>,
}

impl Dfs<'_, '_> {
    /// Place items `k..`; `min_candidate` is the first candidate index item `k` may use (the
    /// symmetry break between identical items).
    fn run(&mut self, state: &mut MigState, occupied: u64, k: usize, min_candidate: usize) -> bool {
        let Some(&g) = self.items.get(k) else {
            return true;
        };
        let free = self
            .problem
            .model
            .memory_slices
            .saturating_sub(occupied.count_ones());
        if self.needed[k] > free {
            return false;
        }
        let group = &self.problem.groups[g];
        for (c, placement) in group.candidates.iter().enumerate().skip(min_candidate) {
            let mask = placement.mask();
            if occupied & mask != 0 {
                continue;
            }
            let Ok(id) = state.create_gi(group.profile.id, Some(*placement)) else {
                continue;
            };
            self.out.push((g, *placement));
            let next_min = match self.items.get(k + 1) {
                Some(&next) if next == g && group.pin.is_none() => c + 1,
                _ => 0,
            };
            if self.run(state, occupied | mask, k + 1, next_min) {
                return true;
            }
            self.out.pop();
            // Undo directly: the scratch GI has no CIs and is not in use.
            state.gpu_instances.remove(&id);
        }
        false
    }
}

/// A profile's legal placements in the modelled driver's auto-placement order: lowest GI id
/// first (on A100/H100 that is the right half of the GPU first), then lowest start.
pub(super) fn preference_order(model: &GpuModel, profile: &GiProfile) -> Vec<Placement> {
    let mut placements = profile.placements.to_vec();
    placements.sort_by_key(|p| (model.gi_id_for(*p).unwrap_or(u32::MAX), p.start));
    placements
}
