//! Precise reasons why a layout cannot be reached, for people: which numbers do not add up on
//! an empty GPU, or which in-use GIs stand in the way and why. Only called once the search
//! has already proven that no plan exists, so it may spend more effort than the search itself.
//! The strict solve lives here because it is the one that must explain a failure: the search
//! itself never calls back into diagnosis.
use crate::catalog::GiProfile;
use crate::ids::GpuInstanceId;

use super::ci::count_list;
use super::search::{Choice, Params, Problem};
use super::{PlanError, PlanOutcome};

impl Problem<'_> {
    /// The plan that reaches the whole layout, or why there is none.
    pub fn solve_strict(&self) -> Result<PlanOutcome, PlanError> {
        let counts = self.full_counts();
        if !self.fits_empty(&counts) {
            return Err(PlanError::Infeasible(explain_empty(self)));
        }
        let params = Params {
            counts: &counts,
            allow_extra: false,
            destroyable: 0,
        };
        match self.solve(&params) {
            Some(solution) => Ok(self.outcome(&solution, &counts)),
            None => Err(explain_blocked(self, &counts)),
        }
    }
}

/// Why the whole desired layout does not fit even an empty GPU of this model.
pub(super) fn explain_empty(p: &Problem<'_>) -> String {
    let model = p.model;
    let items = p.items(&p.full_counts());
    let names: Vec<String> = items
        .iter()
        .map(|(_, prof, _)| prof.name.to_string())
        .collect();
    let list = count_list(&names);

    let mut reasons = Vec::new();
    for prof in model.gi_profiles {
        let n = items.iter().filter(|(_, q, _)| q.id == prof.id).count();
        if n > prof.instance_count as usize {
            reasons.push(format!(
                "{n} × {} requested; the {} allows at most {}",
                prof.name, model.short_name, prof.instance_count
            ));
        }
    }
    if !reasons.is_empty() {
        return reasons.join("; ");
    }
    let memory: u32 = items.iter().map(|(_, q, _)| q.memory_slices).sum();
    if memory > model.memory_slices {
        return format!(
            "{list} needs {memory} memory slices; the {} has {}",
            model.short_name, model.memory_slices
        );
    }
    let compute: u32 = items.iter().map(|(_, q, _)| q.compute_slices).sum();
    if compute > model.compute_slices {
        return format!(
            "{list} needs {compute} compute slices; the {} has {}",
            model.short_name, model.compute_slices
        );
    }
    for (a, (_, pa, pin_a)) in items.iter().enumerate() {
        for (_, pb, pin_b) in &items[a + 1..] {
            if let (Some(x), Some(y)) = (pin_a, pin_b)
                && x.start < y.start + y.size
                && y.start < x.start + x.size
            {
                {
                    return format!(
                        "{} pinned at {} overlaps {} pinned at {}",
                        pa.name, x, pb.name, y
                    );
                }
            }
        }
    }
    // Nothing simple adds up wrong: the legal placements (or a rule such as a media-engine
    // singleton) leave no arrangement. List what each GI may use so the reader can see it.
    let mut seen: Vec<(&GiProfile, Option<crate::ids::Placement>)> = Vec::new();
    for (_, prof, pin) in &items {
        if !seen.iter().any(|(q, p)| q.id == prof.id && p == pin) {
            seen.push((prof, *pin));
        }
    }
    let options: Vec<String> = seen
        .iter()
        .map(|(prof, pin)| match pin {
            Some(p) => format!("{} pinned at {}", prof.name, p),
            None => {
                let starts: Vec<String> = prof
                    .placements
                    .iter()
                    .map(|p| p.start.to_string())
                    .collect();
                format!(
                    "{} at {{{}}}:{}",
                    prof.name,
                    starts.join(","),
                    prof.memory_slices
                )
            }
        })
        .collect();
    format!(
        "no arrangement of {list} fits the {} ({} memory slices): {}",
        model.short_name,
        model.memory_slices,
        options.join(", ")
    )
}

/// Why a layout that fits an empty GPU cannot be reached from the current state: the in-use
/// GIs outside the layout, or else the smallest set of in-use GIs whose slices it needs.
pub(super) fn explain_blocked(p: &Problem<'_>, counts: &[usize]) -> PlanError {
    let extra_ok = Params {
        counts,
        allow_extra: true,
        destroyable: 0,
    };
    if let Some(solution) = p.solve(&extra_ok) {
        let outside: Vec<usize> = solution
            .choices
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == Choice::Extra)
            .map(|(i, _)| i)
            .collect();
        if !outside.is_empty() {
            let reasons: Vec<String> = outside.iter().map(|i| outside_reason(p, *i)).collect();
            return blocked(p, &outside, format!("{}; {}", reasons.join("; "), FIX));
        }
    }
    let in_use: Vec<usize> = (0..p.existing.len())
        .filter(|i| p.existing[*i].in_use)
        .collect();
    for size in 1..=in_use.len() {
        for subset in combinations(&in_use, size) {
            let mask = subset.iter().fold(0u64, |m, i| m | 1 << i);
            let params = Params {
                counts,
                allow_extra: true,
                destroyable: mask,
            };
            if p.solve(&params).is_some() {
                let parts: Vec<String> = subset
                    .iter()
                    .map(|i| match mismatch(p, *i) {
                        Some(why) => format!("{} is in use ({why})", label(p, *i)),
                        None => format!("{} is in use", label(p, *i)),
                    })
                    .collect();
                let reason = if let [one] = parts.as_slice() {
                    format!("{one} and occupies memory slices the layout needs; {FIX}")
                } else {
                    format!(
                        "{}; together they occupy memory slices the layout needs; {FIX}",
                        parts.join(", ")
                    )
                };
                return blocked(p, &subset, reason);
            }
        }
    }
    let labels: Vec<String> = in_use.iter().map(|i| label(p, *i)).collect();
    blocked(
        p,
        &in_use,
        format!(
            "{} are in use and the layout does not fit around them; {FIX}",
            labels.join(", ")
        ),
    )
}

const FIX: &str = "stop what uses them, add them to the layout, or apply with allow-partial";

fn blocked(p: &Problem<'_>, indices: &[usize], reason: String) -> PlanError {
    let gis: Vec<GpuInstanceId> = indices.iter().map(|i| p.existing[*i].id).collect();
    PlanError::BlockedByInUse { gis, reason }
}

/// `GI 7 (1g.5gb at 4:1)`.
fn label(p: &Problem<'_>, i: usize) -> String {
    let e = &p.existing[i];
    format!("GI {} ({} at {})", e.id.0, e.profile.name, e.placement)
}

/// Why in-use GI `i` is not part of the layout.
fn outside_reason(p: &Problem<'_>, i: usize) -> String {
    let why = mismatch(p, i).unwrap_or_else(|| {
        format!(
            "the layout has fewer {} than are in use",
            p.existing[i].profile.name
        )
    });
    format!("{} is in use and {why}", label(p, i))
}

/// Why in-use GI `i` cannot serve any desired GI, or `None` when some desired GI would accept
/// it (it may then only be outside the layout because others of its profile took them).
fn mismatch(p: &Problem<'_>, i: usize) -> Option<String> {
    let e = &p.existing[i];
    let name = e.profile.name;
    let same_profile: Vec<_> = p
        .groups
        .iter()
        .filter(|g| g.profile.id == e.profile.id)
        .collect();
    if same_profile.is_empty() {
        return Some(format!("the layout has no {name}"));
    }
    if same_profile
        .iter()
        .all(|g| g.pin.is_some_and(|pin| pin != e.placement))
    {
        return Some(format!("the layout pins every {name} elsewhere"));
    }
    if e.matches.iter().all(Option::is_none) {
        return Some(format!(
            "its in-use compute instances are not part of any desired {name} split"
        ));
    }
    None
}

/// All `k`-element subsets of `items`, in lexicographic order.
fn combinations(items: &[usize], k: usize) -> Vec<Vec<usize>> {
    fn rec(
        items: &[usize],
        k: usize,
        start: usize,
        cur: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if cur.len() == k {
            out.push(cur.clone());
            return;
        }
        for j in start..items.len() {
            cur.push(items[j]);
            rec(items, k, j + 1, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    rec(items, k, 0, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_list_groups_in_first_appearance_order() {
        let names: Vec<String> = ["3g.20gb", "4g.20gb", "3g.20gb"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(count_list(&names), "3g.20gb ×2 + 4g.20gb");
        assert_eq!(count_list(&[]), "nothing");
    }

    #[test]
    fn combinations_are_lexicographic() {
        assert_eq!(
            combinations(&[1, 3, 5], 2),
            vec![vec![1, 3], vec![1, 5], vec![3, 5]]
        );
    }
}
