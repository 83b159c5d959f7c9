//! The greedy plan for fleets too large for the exact search: exact options per GPU
//! (which of its instances to evict or re-lay out, for each number of moves), then the
//! cheapest options per GI gained, with evicted instances sent where they cost no capacity.
//! Not proven minimal; every move is still legal when made, and the result is checked.
use std::collections::HashMap;

use super::Move;
use super::occ::Occ;
use super::search::World;
use crate::ids::Placement;

/// What one option does with one local instance: `None` evicts it, `Some(p)` re-lays it out.
type Choices = Vec<(usize, Option<Placement>)>;

/// A GPU's layout as far as its options go: occupancy and its movable GIs, sorted.
type Signature = (Occ, Vec<(usize, Placement, super::Mobility)>);

#[derive(Debug, Clone)]
struct GpuOption {
    cost: u32,
    gain: u32,
    /// Indexes into the GPU's sorted local instance list.
    choices: Choices,
}

pub(super) fn plan(mut w: World, count: u32, max_moves: u32) -> Result<Vec<Move>, u32> {
    let mut memo: HashMap<Signature, Vec<GpuOption>> = HashMap::new();
    let mut locals: Vec<Vec<usize>> = vec![Vec::new(); w.gpus.len()];
    for (k, &(g, _)) in w.pos.iter().enumerate() {
        if w.may_move(k) {
            locals[g].push(k);
        }
    }
    let mut all: Vec<(usize, GpuOption)> = Vec::new();
    let mut havens: Vec<Option<Vec<usize>>> = vec![None; w.model.gi_profiles.len()];
    let need = count.saturating_sub(w.total());
    #[allow(
        clippy::needless_range_loop,
        reason = "the shortcut below needs `locals[g]` while `w` changes"
    )]
    for g in 0..locals.len() {
        let ks = &mut locals[g];
        if ks.is_empty() {
            continue;
        }
        // A GPU that would not gain even with all its movable GIs gone has no option.
        let mut bare = w.gpus[g].occ;
        for &k in ks.iter() {
            bare.remove(w.model, w.insts[k].pi, w.pos[k].1);
        }
        if bare.capacity(w.model, w.target) <= w.gpus[g].cap {
            continue;
        }
        ks.sort_by_key(|&k| (w.insts[k].pi, w.pos[k].1.start, w.insts[k].mob));
        let sig: Vec<_> = ks
            .iter()
            .map(|&k| (w.insts[k].pi, w.pos[k].1, w.insts[k].mob))
            .collect();
        let opts = memo
            .entry((w.gpus[g].occ, sig))
            .or_insert_with(|| options(&w, g, ks, max_moves));
        // Shortcut: one move that gains all that is missing cannot be beaten; take it
        // without looking at the rest of the fleet (the simulator asks for one GI at a time).
        let one = opts.iter().find(|o| o.cost == 1 && o.gain >= need).cloned();
        all.extend(opts.iter().map(|o| (g, o.clone())));
        if let Some(o) = one {
            let (mut moves, mut harbours) = (Vec::new(), Vec::new());
            let touched = vec![false; w.gpus.len()];
            let ks = locals[g].clone();
            if execute(
                &mut w,
                g,
                &ks,
                &o.choices,
                &touched,
                &mut havens,
                &mut moves,
                &mut harbours,
            ) {
                // The option's gain was computed on this GPU as it is, and harbours keep
                // their own counts, so the count is reached.
                debug_assert!(w.total() >= count);
                return Ok(moves);
            }
        }
    }
    // Per profile (computed when first needed, above or below), the GPUs that can take one
    // more GI of it without losing fits. Only GPUs that are touched change later, and they
    // are excluded, so a list stays a superset of the harbours (`harbour` re-checks each one).
    all.sort_by_key(|(g, o)| (o.cost * 1000 / o.gain.max(1), std::cmp::Reverse(o.gain), *g));
    let mut moves: Vec<Move> = Vec::new();
    let mut touched: Vec<bool> = vec![false; w.gpus.len()];
    for (g, opt) in all {
        if w.total() >= count {
            break;
        }
        if touched[g] || moves.len() as u32 + opt.cost > max_moves {
            continue;
        }
        let mut harbours = Vec::new();
        if execute(
            &mut w,
            g,
            &locals[g],
            &opt.choices,
            &touched,
            &mut havens,
            &mut moves,
            &mut harbours,
        ) {
            touched[g] = true;
            for h in harbours {
                touched[h] = true;
            }
        }
    }
    if w.total() >= count {
        Ok(moves)
    } else {
        Err(w.total())
    }
}

/// The best option of GPU `g` for each number of moves (1..=max), with a positive gain.
fn options(w: &World, g: usize, ks: &[usize], max_moves: u32) -> Vec<GpuOption> {
    let mut base = w.gpus[g].occ;
    for &k in ks {
        base.remove(w.model, w.insts[k].pi, w.pos[k].1);
    }
    let mut best: Vec<Option<GpuOption>> = vec![None; max_moves as usize + 1];
    let mut choices = Vec::new();
    // Whether each instance may leave the GPU at all (somewhere; `execute` finds where).
    let leave: Vec<bool> = ks
        .iter()
        .map(|&k| (0..w.gpus.len()).any(|h| h != g && w.kind(k, g, h).is_some()))
        .collect();
    let ctx = Ctx {
        w,
        g,
        ks,
        leave: &leave,
        max_moves,
    };
    walk(&ctx, 0, &mut base, 0, &mut choices, &mut best);
    best.into_iter().flatten().collect()
}

/// What stays fixed while one GPU's options are enumerated.
struct Ctx<'a> {
    w: &'a World,
    g: usize,
    ks: &'a [usize],
    leave: &'a [bool],
    max_moves: u32,
}

/// Each movable instance of the GPU in turn stays, is evicted or is re-laid out; at the
/// leaves the best gain per number of moves is kept.
fn walk(
    c: &Ctx<'_>,
    i: usize,
    occ: &mut Occ,
    cost: u32,
    choices: &mut Choices,
    best: &mut [Option<GpuOption>],
) {
    let w = c.w;
    let Some(&k) = c.ks.get(i) else {
        let gain = occ
            .capacity(w.model, w.target)
            .saturating_sub(w.gpus[c.g].cap);
        let slot = &mut best[cost as usize];
        if gain > 0
            && slot.as_ref().is_none_or(|o| gain > o.gain)
            && sequence(w, c.ks, choices).is_some()
        {
            *slot = Some(GpuOption {
                cost,
                gain,
                choices: choices.clone(),
            });
        }
        return;
    };
    let (pi, from) = (w.insts[k].pi, w.pos[k].1);
    // Stay.
    if occ.can_add(w.model, pi, from) {
        occ.add(w.model, pi, from);
        walk(c, i + 1, occ, cost, choices, best);
        occ.remove(w.model, pi, from);
    }
    if cost >= c.max_moves {
        return;
    }
    // Evict (somewhere off this GPU; `execute` finds where).
    if c.leave[i] {
        choices.push((i, None));
        walk(c, i + 1, occ, cost + 1, choices, best);
        choices.pop();
    }
    // Re-lay out on this GPU.
    if w.kind(k, c.g, c.g).is_some() {
        for &to in w.model.gi_profiles[pi].placements {
            if to != from && occ.can_add(w.model, pi, to) {
                occ.add(w.model, pi, to);
                choices.push((i, Some(to)));
                walk(c, i + 1, occ, cost + 1, choices, best);
                choices.pop();
                occ.remove(w.model, pi, to);
            }
        }
    }
}

/// An order in which the re-layouts of `choices` can be made one by one after the evictions
/// (each destination free when its turn comes), or `None`.
fn sequence(w: &World, ks: &[usize], choices: &Choices) -> Option<Vec<usize>> {
    let g = ks.first().map(|&k| w.pos[k].0)?;
    let mut occ = w.gpus[g].occ;
    for &(i, to) in choices {
        if to.is_none() {
            occ.remove(w.model, w.insts[ks[i]].pi, w.pos[ks[i]].1);
        }
    }
    let mut pending: Vec<(usize, Placement)> = choices
        .iter()
        .filter_map(|&(i, to)| to.map(|p| (i, p)))
        .collect();
    let mut order = Vec::new();
    while !pending.is_empty() {
        let ready = pending.iter().position(|&(i, to)| {
            let k = ks[i];
            let mut o = occ;
            o.remove(w.model, w.insts[k].pi, w.pos[k].1);
            o.can_add(w.model, w.insts[k].pi, to)
        })?;
        let (i, to) = pending.remove(ready);
        let k = ks[i];
        occ.remove(w.model, w.insts[k].pi, w.pos[k].1);
        occ.add(w.model, w.insts[k].pi, to);
        order.push(i);
    }
    Some(order)
}

/// Carry out an option on `w`: evictions to harbours (GPUs not yet touched whose fits do not
/// drop), then re-layouts in a feasible order. `false` when an eviction finds no harbour.
#[allow(
    clippy::too_many_arguments,
    reason = "the greedy loop's state, passed flat"
)]
fn execute(
    w: &mut World,
    g: usize,
    ks: &[usize],
    choices: &Choices,
    touched: &[bool],
    havens: &mut [Option<Vec<usize>>],
    moves: &mut Vec<Move>,
    harbours: &mut Vec<usize>,
) -> bool {
    let Some(order) = sequence(w, ks, choices) else {
        return false;
    };
    let mut undo: Vec<(usize, (usize, Placement))> = Vec::new();
    for &(i, to) in choices {
        if to.is_some() {
            continue;
        }
        let k = ks[i];
        let pi = w.insts[k].pi;
        let list = havens[pi]
            .get_or_insert_with(|| (0..w.gpus.len()).filter(|&h| has_haven(w, h, pi)).collect());
        let Some((h, at, kind)) = harbour(w, k, g, touched, list) else {
            // Undo this option's evictions: `w` is left as it was.
            for (k, (fg, fp)) in undo.into_iter().rev() {
                w.apply(k, fg, fp);
                moves.pop();
            }
            harbours.clear();
            return false;
        };
        let from = w.pos[k];
        undo.push((k, from));
        w.apply(k, h, at);
        moves.push(w.record(k, from, kind));
        harbours.push(h);
    }
    for i in order {
        let k = ks[i];
        let Some(to) = choices.iter().find(|c| c.0 == i).and_then(|c| c.1) else {
            continue;
        };
        let from = w.pos[k];
        w.apply(k, g, to);
        moves.push(w.record(k, from, super::MoveKind::Relayout));
    }
    true
}

/// Whether GPU `h` can take a GI of profile `pi` without losing fits.
fn has_haven(w: &World, h: usize, pi: usize) -> bool {
    let occ = w.gpus[h].occ;
    w.model.gi_profiles[pi].placements.iter().any(|&at| {
        let mut after = occ;
        occ.can_add(w.model, pi, at) && {
            after.add(w.model, pi, at);
            after.capacity(w.model, w.target) >= w.gpus[h].cap
        }
    })
}

/// A GPU and placement for instance `k` (leaving GPU `g`) that does not lower that GPU's fits.
fn harbour(
    w: &World,
    k: usize,
    g: usize,
    touched: &[bool],
    havens: &[usize],
) -> Option<(usize, Placement, super::MoveKind)> {
    let pi = w.insts[k].pi;
    havens
        .iter()
        .copied()
        .filter(|&h| h != g && !touched[h])
        .find_map(|h| {
            let kind = w.kind(k, g, h)?;
            let occ = w.gpus[h].occ;
            w.model.gi_profiles[pi].placements.iter().find_map(|&at| {
                if !occ.can_add(w.model, pi, at) {
                    return None;
                }
                let mut after = occ;
                after.add(w.model, pi, at);
                (after.capacity(w.model, w.target) >= w.gpus[h].cap).then_some((h, at, kind))
            })
        })
}
