//! `vmig capacity` answers checked against the `mig` planner run on the injected layouts:
//! the totals are `remaining_gi_capacity` summed over the usable GPUs, and the placement plan
//! is reproduced step by step with `best_fit_placement` and the same ranking.

mod vmig_support;

use mig::{MigState, VgpuType};
use vmig_support::{Env, doc, gi, gpu, state_of};
use vmig_testkit::{GpuConfig, GpuRule, Vcsim};

const A100: &str = "a100-pcie-40gb";

/// The planner's answer: total capacity and the greedy best-fit plan for `n` VMs, where
/// each step takes the GPU left least fragmented, then with fewest free slices, then by
/// host name and GPU index (what docs/admin-guide.md promises).
fn planner(gpus: &[(&str, u32, MigState)], vtype: &str, n: u32) -> (u32, Vec<(String, u32, u32)>) {
    let t = VgpuType::parse(vtype).unwrap();
    let mut states: Vec<(String, u32, MigState)> = gpus
        .iter()
        .map(|(h, i, s)| (h.to_string(), *i, s.clone()))
        .collect();
    let total = states
        .iter()
        .map(|(_, _, s)| {
            s.remaining_gi_capacity(t.gi_profile(s.gpu_model()).unwrap().id)
                .unwrap()
        })
        .sum();
    let mut plan = Vec::new();
    for _ in 0..n {
        let mut best: Option<(f64, u32, String, u32, usize, mig::Placement)> = None;
        for (k, (h, i, s)) in states.iter().enumerate() {
            let p = t.gi_profile(s.gpu_model()).unwrap().id;
            let Some(at) = mig::planner::best_fit_placement(s, p) else {
                continue;
            };
            let mut after = s.clone();
            after.create_gi(p, Some(at)).unwrap();
            let free = s.gpu_model().memory_slices - after.occupied_memory_mask().count_ones();
            let key = (after.fragmentation(), free, h.clone(), *i, k, at);
            let better = match &best {
                None => true,
                Some(b) => {
                    (key.0, key.1, &key.2, key.3).partial_cmp(&(b.0, b.1, &b.2, b.3))
                        == Some(std::cmp::Ordering::Less)
                }
            };
            if better {
                best = Some(key);
            }
        }
        let Some((_, _, h, i, k, at)) = best else {
            break;
        };
        let p = t.gi_profile(states[k].2.gpu_model()).unwrap().id;
        states[k].2.create_gi(p, Some(at)).unwrap();
        plan.push((h, i, at.start));
    }
    (total, plan)
}

#[test]
fn capacity_matches_the_planner() {
    let h0 = vec![
        gpu(
            0,
            A100,
            true,
            true,
            &[gi("3g.20gb", 4, Some("a")), gi("1g.5gb", 0, None)],
        ),
        gpu(1, A100, true, true, &[gi("2g.10gb", 2, Some("b"))]),
    ];
    let h1 = vec![gpu(
        0,
        A100,
        true,
        true,
        &[gi("1g.5gb", 6, Some("c")), gi("1g.5gb", 1, None)],
    )];
    let h2 = vec![gpu(0, A100, true, true, &[])];
    let builder = Vcsim::builder()
        .hosts_per_cluster(4)
        .vms(1)
        .gpu_hosts(
            GpuConfig::default()
                .rule(GpuRule::hosts("DC0_C0_H0").gpu(A100, 2))
                .rule(GpuRule::hosts("DC0_C0_H1").gpu(A100, 1))
                // H2 offers only small types; H3 has a stale report.
                .rule(
                    GpuRule::hosts("DC0_C0_H2")
                        .gpu(A100, 1)
                        .vgpu_types(&["grid_a100-1-5c"]),
                )
                .rule(GpuRule::hosts("DC0_C0_H3").gpu(A100, 1)),
        )
        .custom_value("DC0_C0_H0", "vmig.mig", &doc(1, 3600, h0.clone()))
        .custom_value("DC0_C0_H1", "vmig.mig", &doc(1, 3600, h1.clone()))
        .custom_value("DC0_C0_H2", "vmig.mig", &doc(1, 3600, h2.clone()))
        .custom_value(
            "DC0_C0_H3",
            "vmig.mig",
            &doc(100_000, 3600, vec![gpu(0, A100, true, true, &[])]),
        );
    let env = Env::start(builder, "vmig-capacity");

    let usable_for_all: Vec<(&str, u32, MigState)> = vec![
        ("DC0_C0_H0", 0, state_of(&h0[0])),
        ("DC0_C0_H0", 1, state_of(&h0[1])),
        ("DC0_C0_H1", 0, state_of(&h1[0])),
    ];
    for (vtype, n) in [
        ("grid_a100-3-20c", 2),
        ("grid_a100-2-10c", 3),
        ("grid_a100-1-5c", 6),
        ("grid_a100-7-40c", 1),
    ] {
        let mut usable = usable_for_all.clone();
        if vtype == "grid_a100-1-5c" {
            usable.push(("DC0_C0_H2", 0, state_of(&h2[0])));
        }
        let (total, plan) = planner(&usable, vtype, n);
        let fits = plan.len() as u32 >= n;
        let a = env.vmig_json(
            &["capacity", "--profile", vtype, "--count", &n.to_string()],
            if fits { 0 } else { 4 },
        );
        assert_eq!(
            a["available"].as_u64().unwrap() as u32,
            total,
            "{vtype}: {a:#}"
        );
        assert_eq!(a["fits"], fits, "{vtype}");
        let got: Vec<(String, u32, u32)> = a["plan"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["host"].as_str().unwrap().to_string(),
                    p["gpu_index"].as_u64().unwrap() as u32,
                    p["placement"]["start"].as_u64().unwrap() as u32,
                )
            })
            .collect();
        assert_eq!(got, plan, "{vtype}: plan");
        let not_counted: Vec<&str> = a["not_counted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["host"].as_str().unwrap())
            .collect();
        assert_eq!(
            not_counted,
            ["DC0_C0_H3"],
            "{vtype}: the stale host is named, not counted"
        );
    }

    // Asking for more than fits: exit 4 and a plan as long as possible.
    let (total, _) = planner(&usable_for_all, "grid_a100-7-40c", 5);
    let a = env.vmig_json(
        &["capacity", "--profile", "grid_a100-7-40c", "--count", "5"],
        4,
    );
    assert_eq!(a["plan"].as_array().unwrap().len() as u32, total);
    // Text form.
    let out = env.vmig(&["capacity", "--profile", "grid_a100-3-20c", "--count", "1"]);
    let t = String::from_utf8_lossy(&out.stdout);
    assert!(
        t.contains("grid_a100-3-20c (GI profile 3g.20gb)") && t.contains("fits"),
        "{t}"
    );
    // A time-sliced type is a usage error.
    let out = env.vmig(&["capacity", "--profile", "grid_a100-40c"]);
    assert_eq!(out.status.code(), Some(2), "{}", vmig_support::text(&out));
    // Cluster filter: an unknown cluster has nothing.
    let a = env.vmig_json(
        &[
            "capacity",
            "--profile",
            "grid_a100-1-5c",
            "--cluster",
            "nope",
        ],
        4,
    );
    assert_eq!(a["available"], 0);
}
