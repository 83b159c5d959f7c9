//! `vmig assign` / `unassign` against a simulator with injected agent documents: every
//! refusal path (exit status and the one-sentence message naming VM, host and reason), a
//! successful assignment with relocation, the reservation it leaves counted by `capacity`
//! and `report`, `unassign`, the double-booking race between two concurrent processes, and
//! a GPU model this build's catalog lacks, planned from the geometry its agent published.

mod vmig_support;

use std::process::Stdio;

use vcenter_client::{VgpuProfile, VmConfigSpec, VmRef};
use vmig_support::{Env, doc, gi, gpu, park, text, vms};
use vmig_testkit::{GpuConfig, GpuRule, Vcsim};

const A100: &str = "a100-pcie-40gb";

/// Cluster DC0_C0: H0 has an empty A100 (room for one 7g.40gb), H1 a full one, H2 a stale
/// report, H3 offers only grid_a100-1-5c; the standalone host DC0_H0 has no GPU.
fn scene(
    name: &str,
) -> (
    Env,
    tokio::runtime::Runtime,
    vcenter_client::Client,
    Vec<(String, VmRef, String)>,
) {
    let builder = Vcsim::builder()
        .hosts_per_cluster(4)
        .vms(4)
        .gpu_hosts(
            GpuConfig::default()
                .rule(GpuRule::clusters("DC0_C0").gpu(A100, 1))
                .rule(
                    GpuRule::hosts("DC0_C0_H3")
                        .gpu(A100, 1)
                        .vgpu_types(&["grid_a100-1-5c"]),
                ),
        )
        .custom_value(
            "DC0_C0_H0",
            "vmig.mig",
            &doc(1, 3600, vec![gpu(0, A100, true, true, &[])]),
        )
        .custom_value(
            "DC0_C0_H1",
            "vmig.mig",
            &doc(
                1,
                3600,
                vec![gpu(
                    0,
                    A100,
                    true,
                    true,
                    &[gi("7g.40gb", 0, Some("big-vm"))],
                )],
            ),
        )
        .custom_value(
            "DC0_C0_H2",
            "vmig.mig",
            &doc(50_000, 3600, vec![gpu(0, A100, true, true, &[])]),
        )
        .custom_value(
            "DC0_C0_H3",
            "vmig.mig",
            &doc(1, 3600, vec![gpu(0, A100, true, true, &[])]),
        );
    let env = Env::start(builder, name);
    let rt = Env::runtime();
    let c = env.client(&rt);
    let all: Vec<(String, VmRef, String)> = vms(&rt, &c)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("DC0_C0_RP0"))
        .collect();
    assert!(all.len() >= 4, "{all:?}");
    (env, rt, c, all)
}

fn refusal(env: &Env, args: &[&str], code: i32, kind: &str, needles: &[&str]) {
    let j = env.vmig_json(args, code);
    assert_eq!(j["refusal"]["kind"], kind, "{args:?}: {j:#}");
    let msg = j["refusal"]["message"].as_str().unwrap();
    for n in needles {
        assert!(msg.contains(n), "{args:?}: {msg:?} lacks {n:?}");
    }
    assert_eq!(msg.lines().count(), 1, "one sentence: {msg:?}");
}

#[test]
fn every_refusal_path() {
    let (env, rt, c, vms) = scene("vmig-refusals");
    let (on_vm, _, on_host) = vms[0].clone();
    // vm 1: powered off on H1 (the full host); vm 2: powered off with another vGPU.
    let (off_vm, off_ref, _) = vms[1].clone();
    park(&rt, &c, &off_ref, "DC0_C0_H1");
    let (other_vm, other_ref, _) = vms[2].clone();
    park(&rt, &c, &other_ref, "DC0_C0_H0");
    rt.block_on(async {
        let spec = VmConfigSpec::new().add_vgpu(VgpuProfile::new("grid_a100-1-5c").unwrap());
        let t = c.reconfigure_vm(&other_ref, &spec).await.unwrap();
        c.wait_for_task(&t, vcenter_client::TaskWait::default())
            .await
            .unwrap();
    });

    let t = "grid_a100-7-40c";
    refusal(
        &env,
        &["assign", "--vm", "no-such-vm", "--profile", t],
        3,
        "vm_not_found",
        &["no-such-vm"],
    );
    refusal(
        &env,
        &["assign", "--vm", &on_vm, "--profile", t],
        3,
        "vm_powered_on",
        &[&on_vm, &on_host, "poweredOn", "power it off"],
    );
    refusal(
        &env,
        &["assign", "--vm", &other_vm, "--profile", t],
        3,
        "other_vgpu",
        &[&other_vm, "DC0_C0_H0", "grid_a100-1-5c", "vmig unassign"],
    );
    refusal(
        &env,
        &["assign", "--vm", &off_vm, "--profile", t, "--host", "nope"],
        3,
        "host_not_found",
        &[&off_vm, "nope"],
    );
    refusal(
        &env,
        &[
            "assign",
            "--vm",
            &off_vm,
            "--profile",
            t,
            "--host",
            "DC0_C0_H3",
        ],
        3,
        "type_not_offered",
        &[&off_vm, "DC0_C0_H3", t, "grid_a100-1-5c"],
    );
    refusal(
        &env,
        &[
            "assign",
            "--vm",
            &off_vm,
            "--profile",
            t,
            "--host",
            "DC0_C0_H2",
        ],
        3,
        "no_agent_report",
        &[&off_vm, "DC0_C0_H2", "older than 3 heartbeats"],
    );
    refusal(
        &env,
        &[
            "assign",
            "--vm",
            &off_vm,
            "--profile",
            t,
            "--host",
            "DC0_C0_H1",
        ],
        4,
        "no_capacity",
        &[&off_vm, "DC0_C0_H1", t],
    );
    // Usage errors: not a MIG-backed type, no password source at all.
    let out = env.vmig(&["assign", "--vm", &off_vm, "--profile", "grid_a100-40c"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("time-sliced"),
        "{}",
        text(&out)
    );
    let out = env
        .vmig_cmd(&["report"])
        .env_remove("GOVC_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--password-file"),
        "{}",
        text(&out)
    );
    // Nothing to unassign.
    refusal(
        &env,
        &["unassign", "--vm", &off_vm],
        3,
        "nothing_to_do",
        &[&off_vm, "DC0_C0_H1", "nothing to unassign"],
    );
    // Unassign of a running VM's vGPU is refused too.
    rt.block_on(async {
        let spec = VmConfigSpec::new().add_vgpu(VgpuProfile::new("grid_a100-1-5c").unwrap());
        let vm = &vms[0].1;
        let t = c.reconfigure_vm(vm, &spec).await.unwrap();
        c.wait_for_task(&t, vcenter_client::TaskWait::default())
            .await
            .unwrap();
    });
    refusal(
        &env,
        &["unassign", "--vm", &on_vm],
        3,
        "vm_powered_on",
        &[&on_vm, "power it off"],
    );
}

#[test]
fn assign_relocates_reserves_and_unassign_reverses() {
    let (env, rt, c, vms) = scene("vmig-assign");
    let (vm, vm_ref, _) = vms[1].clone();
    // The VM sits on the full host: auto placement must move it to H0.
    park(&rt, &c, &vm_ref, "DC0_C0_H1");
    let dry = env.vmig_json(
        &[
            "assign",
            "--vm",
            &vm,
            "--profile",
            "grid_a100-7-40c",
            "--dry-run",
        ],
        0,
    );
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["host"], "DC0_C0_H0");
    assert!(dry["reservation"].is_null());
    let before = env.vmig_json(&["capacity", "--profile", "grid_a100-7-40c"], 0);
    assert_eq!(before["available"], 1);

    let done = env.vmig_json(&["assign", "--vm", &vm, "--profile", "grid_a100-7-40c"], 0);
    assert_eq!(done["host"], "DC0_C0_H0");
    assert_eq!(done["relocated"], true);
    assert_eq!(done["from_host"], "DC0_C0_H1");
    assert_eq!(
        done["placement"],
        serde_json::json!({"start": 0, "size": 8})
    );
    assert_eq!(done["reservation"]["gpu_uuid"], format!("GPU-{A100}-0000"));

    // The change is in vCenter.
    let v = rt
        .block_on(c.vm(
            &vm_ref,
            &[
                vcenter_client::VmProperty::Vgpus,
                vcenter_client::VmProperty::Host,
                vcenter_client::VmProperty::MemoryReservationLockedToMax,
            ],
        ))
        .unwrap();
    assert_eq!(v.vgpus.len(), 1);
    assert_eq!(v.vgpus[0].profile.as_str(), "grid_a100-7-40c");
    assert_eq!(v.memory_reservation_locked_to_max, Some(true));
    assert_eq!(Some(vmig_support::host_ref(&rt, &c, "DC0_C0_H0")), v.host);

    // The reservation is counted until the agent reports the VM running.
    let after = env.vmig_json(
        &["capacity", "--profile", "grid_a100-7-40c", "--count", "1"],
        4,
    );
    assert_eq!(after["available"], 0);
    let r = env.vmig_json(&["report"], 0);
    let h0 = r["vcenters"][0]["datacenters"][0]["clusters"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "DC0_C0_H0")
        .unwrap()
        .clone();
    assert_eq!(h0["gpus"][0]["reservations"][0]["vm"], vm.as_str());
    assert_eq!(h0["gpus"][0]["reservations"][0]["status"], "held");
    let listed = r["vgpu_vms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["vm"] == vm.as_str() && !v["reservation"].is_null());
    assert!(listed, "{:#}", r["vgpu_vms"]);
    // Assigning again: nothing to do.
    refusal(
        &env,
        &["assign", "--vm", &vm, "--profile", "grid_a100-7-40c"],
        3,
        "nothing_to_do",
        &[&vm, "already has vGPU"],
    );

    // Unassign reverses it.
    let u = env.vmig_json(&["unassign", "--vm", &vm], 0);
    assert_eq!(u["removed"], serde_json::json!(["grid_a100-7-40c"]));
    assert_eq!(u["reservation_cleared"], true);
    let v = rt
        .block_on(c.vm(&vm_ref, &[vcenter_client::VmProperty::Vgpus]))
        .unwrap();
    assert!(v.vgpus.is_empty());
    let again = env.vmig_json(&["capacity", "--profile", "grid_a100-7-40c"], 0);
    assert_eq!(again["available"], 1);
}

#[test]
fn two_concurrent_assigns_for_the_last_slice_exactly_one_wins() {
    let (env, rt, c, vms) = scene("vmig-race");
    let (a, a_ref, _) = vms[1].clone();
    let (b, b_ref, _) = vms[2].clone();
    park(&rt, &c, &a_ref, "DC0_C0_H1");
    park(&rt, &c, &b_ref, "DC0_C0_H1");
    for round in 0..2 {
        let spawn = |vm: &str| {
            env.vmig_cmd(&[
                "--json",
                "assign",
                "--vm",
                vm,
                "--profile",
                "grid_a100-7-40c",
                "--host",
                "DC0_C0_H0",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn vmig")
        };
        let (pa, pb) = (spawn(&a), spawn(&b));
        let (oa, ob) = (
            pa.wait_with_output().unwrap(),
            pb.wait_with_output().unwrap(),
        );
        let codes = (oa.status.code(), ob.status.code());
        assert!(
            codes == (Some(0), Some(4)) || codes == (Some(4), Some(0)),
            "round {round}: exactly one must win:\n{}\n{}",
            text(&oa),
            text(&ob)
        );
        let (winner, loser, lost) = if codes.0 == Some(0) {
            (&a, &b, &ob)
        } else {
            (&b, &a, &oa)
        };
        let j: serde_json::Value = serde_json::from_slice(&lost.stdout).unwrap();
        let msg = j["refusal"]["message"].as_str().unwrap();
        assert!(
            msg.contains(loser.as_str()) && msg.contains("DC0_C0_H0"),
            "{msg}"
        );
        assert!(
            j["refusal"]["kind"] == "lost_race" || j["refusal"]["kind"] == "no_capacity",
            "{j:#}"
        );
        // One reservation, the winner's.
        let r = env.vmig_json(&["report"], 0);
        let res: Vec<String> = r["vcenters"][0]["datacenters"][0]["clusters"][0]["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|h| h["gpus"].as_array().unwrap().iter())
            .flat_map(|g| g["reservations"].as_array().unwrap().iter())
            .map(|r| r["vm"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(res, std::slice::from_ref(winner), "round {round}");
        // Back to the start for the next round (the winner is on H0 now; the loser untouched).
        env.vmig_json(&["unassign", "--vm", winner], 0);
        let w_ref = if winner == &a { &a_ref } else { &b_ref };
        park(&rt, &c, w_ref, "DC0_C0_H1");
    }
}

/// Issue 17: a GPU that this build's catalog lacks (here an H100's geometry under a name and
/// vGPU board no catalog model has) is reported, counted and assigned from the geometry its
/// agent published and the host's vGPU type names, end to end.
#[test]
fn a_gpu_absent_from_the_build_is_reported_planned_and_assigned() {
    use vmig_support::unknown_gpu;
    use vmig_testkit::GpuModelSpec;
    const H100: &str = "h100-sxm5-80gb";
    const NAME: &str = "NVIDIA Q900 Future";
    let types = [
        "nvidia_q900-1-10c",
        "nvidia_q900-3-40c",
        "nvidia_q900-7-80c",
    ];
    let q900 = GpuModelSpec {
        name: NAME.into(),
        device_id: 0x3fff,
        sub_device_id: 0x1234,
        memory_mib: 81_920,
        vgpu_types: types.iter().map(|t| t.to_string()).collect(),
    };
    // H0: one 3g.40gb in use at 4, so one more 3g.40gb fits (at 0); H1: full.
    let busy = unknown_gpu(
        gpu(0, H100, true, true, &[gi("3g.40gb", 4, Some("busy-vm"))]),
        NAME,
        "q900",
    );
    let full = unknown_gpu(
        gpu(0, H100, true, true, &[gi("7g.80gb", 0, Some("big-vm"))]),
        NAME,
        "q900",
    );
    assert_eq!(
        busy.gpu_instances[0].vgpu_type.as_deref(),
        Some("nvidia_q900-3-40c")
    );
    let builder = Vcsim::builder()
        .hosts_per_cluster(2)
        .standalone_hosts(0)
        .vms(2)
        .gpu_hosts(
            GpuConfig::default()
                .model("q900", q900)
                .rule(GpuRule::clusters("DC0_C0").gpu("q900", 1)),
        )
        .custom_value("DC0_C0_H0", "vmig.mig", &doc(1, 3600, vec![busy]))
        .custom_value("DC0_C0_H1", "vmig.mig", &doc(1, 3600, vec![full]));
    let env = Env::start(builder, "vmig-assign-unknown-gpu");
    let rt = Env::runtime();
    let c = env.client(&rt);
    let (vm, vm_ref, _) = vms(&rt, &c)
        .into_iter()
        .find(|(n, _, _)| n.starts_with("DC0_C0_RP0"))
        .expect("a VM in the cluster");
    park(&rt, &c, &vm_ref, "DC0_C0_H1");

    // The report shows the GPU with its layout and what still fits, without a problem.
    let r = env.vmig_json(&["report"], 0);
    let h0 = vmig_support::host_json(&r, "DC0_C0_H0").expect("H0 in the report");
    let g = &h0["gpus"][0];
    assert_eq!(g["name"], NAME, "{g:#}");
    assert_eq!(g["instances"][0]["profile"], "3g.40gb", "{g:#}");
    assert_eq!(g["instances"][0]["vm"], "busy-vm", "{g:#}");
    assert!(g["error"].is_null(), "{g:#}");
    assert_eq!(g["memory_slices"], 8, "{g:#}");
    let free_3g = g["free_vgpu_types"]
        .as_array()
        .expect("free_vgpu_types")
        .iter()
        .find(|t| t["vgpu_type"] == "nvidia_q900-3-40c")
        .cloned();
    assert_eq!(
        free_3g.as_ref().map(|t| (&t["count"], &t["offered"])),
        Some((&serde_json::json!(1), &serde_json::json!(true))),
        "{g:#}"
    );

    // Capacity plans it; a type the host does not offer for it stays unknown.
    let cap = env.vmig_json(&["capacity", "--profile", "nvidia_q900-3-40c"], 0);
    assert_eq!(cap["available"], 1, "{cap:#}");
    let cap7 = env.vmig_json(
        &["capacity", "--profile", "nvidia_q900-7-80c", "--count", "1"],
        4,
    );
    assert_eq!(cap7["available"], 0, "{cap7:#}");

    // Assign moves the VM to H0 and books the free 3g.40gb at 0.
    let done = env.vmig_json(
        &["assign", "--vm", &vm, "--profile", "nvidia_q900-3-40c"],
        0,
    );
    assert_eq!(done["host"], "DC0_C0_H0", "{done:#}");
    assert_eq!(
        done["placement"],
        serde_json::json!({"start": 0, "size": 4}),
        "{done:#}"
    );
    let v = rt
        .block_on(c.vm(&vm_ref, &[vcenter_client::VmProperty::Vgpus]))
        .unwrap();
    assert_eq!(v.vgpus.len(), 1);
    assert_eq!(v.vgpus[0].profile.as_str(), "nvidia_q900-3-40c");
    let after = env.vmig_json(
        &["capacity", "--profile", "nvidia_q900-3-40c", "--count", "1"],
        4,
    );
    assert_eq!(after["available"], 0, "{after:#}");
}
