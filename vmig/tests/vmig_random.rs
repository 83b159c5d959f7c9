//! A small randomized run (issue 15): rounds of concurrent `vmig assign` / `unassign` of
//! random VMs to random hosts over a small cluster, with the real binary against the
//! simulator. After every round: no slice is double-booked (nothing `unplaceable` or
//! `superseded`, at most two 3g.20gb reservations per A100), no VM has two vGPUs, every VM
//! with a vGPU holds a finished reservation and every reservation a vGPU, and every exit
//! status is one the command documents. The seed is printed; `VMIG_RANDOM_SEED` replays it.

mod vmig_support;

use std::collections::BTreeMap;
use std::process::Stdio;

use vcenter_client::VmProperty;
use vmig_support::{Env, park, text, vms};

const TYPE: &str = "grid_a100-3-20c";

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

#[test]
fn concurrent_random_assigns_and_unassigns_keep_the_invariants() {
    let seed = std::env::var("VMIG_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    eprintln!("VMIG_RANDOM_SEED={seed}");
    let mut rng = Rng(seed);
    let builder = vmig_support::two_free_one_full_a100(5);
    let env = Env::start(builder, "vmig-random");
    let rt = Env::runtime();
    let c = env.client(&rt);
    let all: Vec<_> = vms(&rt, &c)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("DC0_C0_RP0"))
        .collect();
    for (_, r, _) in &all {
        park(&rt, &c, r, "DC0_C0_H2");
    }
    let hosts = ["auto", "DC0_C0_H0", "DC0_C0_H1"];
    let mut tally: BTreeMap<(String, i32), u32> = BTreeMap::new();
    for round in 0..5 {
        let mut children = Vec::new();
        for _ in 0..6 {
            let (vm, _, _) = &all[rng.next(all.len())];
            let args: Vec<String> = if rng.next(3) == 0 {
                vec!["unassign".into(), "--vm".into(), vm.clone()]
            } else {
                let host = hosts[rng.next(hosts.len())];
                ["assign", "--vm", vm, "--profile", TYPE, "--host", host]
                    .map(str::to_string)
                    .to_vec()
            };
            let argv: Vec<&str> = std::iter::once("--json")
                .chain(args.iter().map(String::as_str))
                .collect();
            let child = env
                .vmig_cmd(&argv)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn vmig");
            children.push((args, child));
        }
        for (args, child) in children {
            let out = child.wait_with_output().expect("wait");
            let code = out.status.code();
            assert!(
                matches!(code, Some(0 | 3 | 4)),
                "seed {seed} round {round}: vmig {args:?}: {}",
                text(&out)
            );
            *tally
                .entry((args[0].clone(), code.unwrap_or(-1)))
                .or_default() += 1;
        }
        check_invariants(&env, &rt, &c, seed, round);
    }
    eprintln!("(command, exit status) → count: {tally:?}");
}

fn check_invariants(
    env: &Env,
    rt: &tokio::runtime::Runtime,
    c: &vcenter_client::Client,
    seed: u64,
    round: u32,
) {
    let ctx = format!("seed {seed} round {round}");
    let key = rt
        .block_on(c.custom_field_defs())
        .expect("defs")
        .into_iter()
        .find(|d| d.name == "vmig.reservation")
        .map(|d| d.key);
    let vms = rt
        .block_on(c.vms(&[
            VmProperty::Name,
            VmProperty::Vgpus,
            VmProperty::CustomValues,
        ]))
        .expect("vms");
    let mut per_host: BTreeMap<String, usize> = BTreeMap::new();
    for v in &vms {
        let name = v.name.clone().unwrap_or_default();
        assert!(
            v.vgpus.len() <= 1,
            "{ctx}: VM {name} has {} vGPUs",
            v.vgpus.len()
        );
        let res = key
            .and_then(|k| v.custom_values.get(k))
            .filter(|t| !t.is_empty())
            .map(|t| serde_json::from_str::<serde_json::Value>(t).expect("reservation JSON"));
        assert_eq!(
            v.vgpus.is_empty(),
            res.is_none(),
            "{ctx}: VM {name}: vGPU and reservation go together ({res:?})"
        );
        if let Some(r) = res {
            assert_eq!(r["step"], "done", "{ctx}: VM {name}: {r}");
            *per_host
                .entry(r["host"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
    }
    for (host, n) in &per_host {
        assert!(*n <= 2, "{ctx}: {n} reservations on {host}, room for 2");
    }
    let r = env.vmig_json(&["report"], 0);
    let statuses = r.to_string();
    for bad in ["unplaceable", "superseded", "overbooked"] {
        assert!(
            !statuses.contains(bad),
            "{ctx}: report says {bad}: {:#}",
            r["warnings"]
        );
    }
}
