//! Several vGPUs for one VM (issue 18), on the simulator with the real `vmig` binary:
//! `assign` with two `--profile` places both on one host and books both (capacity and report
//! count each), `unassign` takes both away; a set that does not fit together changes
//! nothing; types of different boards are refused; two admins racing for one GPU: one wins,
//! the other changes nothing; `assign` killed while vCenter moves or
//! reconfigures the VM, then `repair`, leaves the VM with all its vGPUs or none.

mod vmig_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vcenter_client::{Client, VmRef};
use vmig_support::{Env, text};

const SMALL: &str = "grid_a100-3-20c";
const MEDIUM: &str = "grid_a100-4-20c";
const FULL: &str = "grid_a100-7-40c";

/// Cluster DC0_C0: H0 and H1 each have an empty A100 40GB, H2 a full one; every VM starts
/// powered off on H2, so any assign must move it.
fn scene(
    name: &str,
    delays: &[(&str, u32)],
) -> (Env, tokio::runtime::Runtime, Client, Vec<(String, VmRef)>) {
    vmig_support::parked_scene(name, 3, delays)
}

/// (vGPU profiles, reservation JSON, host name) of a VM.
fn vm_state(
    rt: &tokio::runtime::Runtime,
    c: &Client,
    vm: &VmRef,
) -> (Vec<String>, Option<serde_json::Value>, Option<String>) {
    vmig_support::vm_state(rt, c, vm, &["DC0_C0_H0", "DC0_C0_H1", "DC0_C0_H2"])
}

/// The reservations the report lists for `vm`: (host, GPU uuid, vGPU type, status).
fn listed(env: &Env, vm: &str) -> Vec<(String, String, String)> {
    let r = env.vmig_json(&["report"], 0);
    let mut out = Vec::new();
    for h in r["vcenters"][0]["datacenters"][0]["clusters"][0]["hosts"]
        .as_array()
        .expect("hosts")
    {
        for g in h["gpus"].as_array().cloned().unwrap_or_default() {
            for res in g["reservations"].as_array().cloned().unwrap_or_default() {
                if res["vm"] == vm {
                    out.push((
                        h["name"].as_str().unwrap_or("").to_string(),
                        res["vgpu_type"].as_str().unwrap_or("").to_string(),
                        res["status"].as_str().unwrap_or("").to_string(),
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

fn available(env: &Env, profile: &str) -> u64 {
    env.vmig_json(&["capacity", "--profile", profile], 0)["available"]
        .as_u64()
        .expect("available")
}

#[test]
fn two_vgpus_placed_together_counted_each_and_unassigned() {
    let (env, rt, c, vms) = scene("vmig-multi", &[]);
    let (vm, vm_ref) = &vms[0];
    assert_eq!(available(&env, FULL), 2);
    let args = [
        "assign",
        "--vm",
        vm,
        "--profile",
        SMALL,
        "--profile",
        MEDIUM,
    ];
    let dry = {
        let mut a = args.to_vec();
        a.push("--dry-run");
        env.vmig_json(&a, 0)
    };
    assert_eq!(dry["more"][0]["vgpu_type"], MEDIUM, "{dry:#}");
    assert!(dry["reservation"].is_null());
    assert_eq!(vm_state(&rt, &c, vm_ref).0, Vec::<String>::new());

    let done = env.vmig_json(&args, 0);
    let host = done["host"].as_str().expect("host").to_string();
    assert!(host == "DC0_C0_H0" || host == "DC0_C0_H1", "{done:#}");
    assert_eq!(done["vgpu_type"], SMALL);
    assert_eq!(done["more"][0]["vgpu_type"], MEDIUM);
    assert_ne!(
        done["placement"], done["more"][0]["placement"],
        "two placements: {done:#}"
    );
    let (vgpus, res, on) = vm_state(&rt, &c, vm_ref);
    assert_eq!(vgpus, [SMALL, MEDIUM]);
    let res = res.expect("reservation");
    assert_eq!(res["step"], "done");
    assert_eq!(res["more"].as_array().map(Vec::len), Some(1), "{res:#}");
    assert_eq!(on.as_deref(), Some(host.as_str()));
    // Each vGPU is counted: the GPU that holds both has no room for a 7g any more.
    assert_eq!(
        listed(&env, vm),
        [
            (host.clone(), SMALL.to_string(), "held".to_string()),
            (host.clone(), MEDIUM.to_string(), "held".to_string()),
        ]
    );
    assert_eq!(available(&env, FULL), 1);
    // The report's per-VM list names both vGPUs of the reservation.
    let report = env.vmig_json(&["report"], 0);
    let row = report["vgpu_vms"]
        .as_array()
        .expect("vgpu_vms")
        .iter()
        .find(|v| v["vm"] == *vm)
        .cloned()
        .expect("the VM is listed");
    let booked = row["reservation"].as_str().expect("reservation");
    assert!(
        booked.contains(SMALL) && booked.contains(MEDIUM) && booked.ends_with(&host),
        "{row:#}"
    );

    let u = env.vmig_json(&["unassign", "--vm", vm], 0);
    assert_eq!(u["removed"].as_array().map(Vec::len), Some(2), "{u:#}");
    assert_eq!(u["reservation_cleared"], true);
    let (vgpus, res, _) = vm_state(&rt, &c, vm_ref);
    assert!(vgpus.is_empty() && res.is_none());
    assert_eq!(available(&env, FULL), 2);
}

#[test]
fn a_set_that_does_not_fit_together_or_mixes_boards_changes_nothing() {
    let (env, rt, c, vms) = scene("vmig-multi-none", &[]);
    let (vm, vm_ref) = &vms[0];
    // A 7g takes a whole A100 40GB: no GPU holds it and a 1g beside it, and vmig never
    // splits one VM's vGPUs across hosts.
    let j = env.vmig_json(
        &[
            "assign",
            "--vm",
            vm,
            "--profile",
            FULL,
            "--profile",
            "grid_a100-1-5c",
        ],
        4,
    );
    assert_eq!(j["refusal"]["kind"], "no_capacity", "{j:#}");
    let msg = j["refusal"]["message"].as_str().expect("message");
    assert!(
        msg.contains(vm.as_str()) && msg.contains("all of") && msg.contains("nothing was changed"),
        "{msg}"
    );
    assert_eq!(msg.lines().count(), 1);
    // A set that fits only on a host the VM may not use (named, and full) is refused too.
    let j = env.vmig_json(
        &[
            "assign",
            "--vm",
            vm,
            "--profile",
            SMALL,
            "--profile",
            MEDIUM,
            "--host",
            "DC0_C0_H2",
        ],
        4,
    );
    assert_eq!(j["refusal"]["kind"], "no_capacity", "{j:#}");
    // Different boards (A100 40GB `a100`, A100 80GB `a100d`) may not share a VM.
    let j = env.vmig_json(
        &[
            "assign",
            "--vm",
            vm,
            "--profile",
            SMALL,
            "--profile",
            "grid_a100d-1-10c",
        ],
        3,
    );
    assert_eq!(j["refusal"]["kind"], "other_vgpu", "{j:#}");
    let msg = j["refusal"]["message"].as_str().expect("message");
    assert!(msg.contains("board and series"), "{msg}");
    let (vgpus, res, on) = vm_state(&rt, &c, vm_ref);
    assert!(vgpus.is_empty(), "{vgpus:?}");
    assert!(res.is_none(), "{res:?}");
    assert_eq!(on.as_deref(), Some("DC0_C0_H2"));
    assert_eq!(available(&env, FULL), 2);
}

/// `vmig --json assign VM SMALL MEDIUM --host HOST`, short stale time, output piped.
fn assign_two(env: &Env, vm: &str, host: &str) -> Command {
    let mut cmd = env.vmig_cmd(&[
        "--json",
        "assign",
        "--vm",
        vm,
        "--profile",
        SMALL,
        "--profile",
        MEDIUM,
        "--host",
        host,
    ]);
    cmd.env("VMIG_LOCK_STALE_S", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn killed_multi_assign_then_repair_leaves_all_or_none() {
    let delays = [("RelocateVM_Task", 2000), ("ReconfigVM_Task", 2000)];
    let (env, rt, c, vms) = scene("vmig-multi-kill", &delays);
    for ((vm, vm_ref), (host, step)) in vms
        .iter()
        .zip([("DC0_C0_H0", "relocating"), ("DC0_C0_H1", "configuring")])
    {
        let mut child = assign_two(&env, vm, host).spawn().expect("spawn");
        wait_until(Duration::from_secs(60), step, || {
            vm_state(&rt, &c, vm_ref)
                .1
                .is_some_and(|r| r["step"] == step)
        });
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        // Whatever vCenter has done so far, the VM never has one vGPU of two.
        assert_ne!(vm_state(&rt, &c, vm_ref).0.len(), 1);
    }
    // Let the calls in flight at the kill land, then repair.
    std::thread::sleep(Duration::from_millis(2200));
    let out = env
        .vmig_cmd(&["--json", "repair"])
        .env("VMIG_LOCK_STALE_S", "2")
        .output()
        .expect("repair");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["vms"].as_array().map(Vec::len), Some(2), "{j:#}");
    for ((_, vm_ref), host) in vms.iter().zip(["DC0_C0_H0", "DC0_C0_H1"]) {
        let (vgpus, res, on) = vm_state(&rt, &c, vm_ref);
        match res {
            // Rolled forward: both vGPUs, on the planned host, journal done.
            Some(r) => {
                assert_eq!(vgpus, [SMALL, MEDIUM], "{r:#}");
                assert_eq!(r["step"], "done");
                assert_eq!(on.as_deref(), Some(host));
            }
            // Rolled back: none, back where it was.
            None => {
                assert!(vgpus.is_empty(), "{vgpus:?}");
                assert_eq!(on.as_deref(), Some("DC0_C0_H2"));
            }
        }
    }
    // Nothing left for repair.
    let again = env
        .vmig_cmd(&["--json", "repair"])
        .output()
        .expect("repair");
    let j: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    assert_eq!(j["vms"], serde_json::json!([]), "{}", text(&again));
}

#[test]
fn two_admins_race_for_one_gpu_with_two_vgpus_each_exactly_one_wins() {
    // SetField slowed down so both runs meet inside the reserve step.
    let (env, rt, c, vms) = scene("vmig-multi-race", &[("SetField", 300)]);
    let ((a, a_ref), (b, b_ref)) = (&vms[0], &vms[1]);
    let outs =
        vmig_support::race_one_wins([a, b].iter().map(|vm| assign_two(&env, vm, "DC0_C0_H0")));
    for (out, vm_ref) in outs.iter().zip([a_ref, b_ref]) {
        let (vgpus, res, on) = vm_state(&rt, &c, vm_ref);
        if out.status.code() == Some(0) {
            assert_eq!(vgpus, [SMALL, MEDIUM]);
            assert_eq!(res.expect("reservation")["step"], "done");
            assert_eq!(on.as_deref(), Some("DC0_C0_H0"));
        } else {
            // The loser changed nothing at all.
            let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
            let kind = j["refusal"]["kind"].as_str().unwrap_or("");
            assert!(["lost_race", "no_capacity"].contains(&kind), "{j:#}");
            assert!(vgpus.is_empty() && res.is_none(), "{vgpus:?} {res:?}");
            assert_eq!(on.as_deref(), Some("DC0_C0_H2"));
        }
    }
}
