//! Time-sliced MIG-backed vGPUs (issue 18) through `vmig`, end to end: govmomi's vCenter
//! simulator with a host offering an RTX PRO 6000 Blackwell SE's vGPU types, and the real
//! `vmig-agent` on nvml-sim (two RTX PRO 6000: GPU 0 in MIG mode, GPU 1 without MIG).
//!
//! GPU 0 is laid out so that exactly one `1g.24gb` GI can host time-sliced `DC-1-8C` vGPUs
//! (three to a GI): `capacity` counts its three slots, `assign` fills it slot by slot (each
//! VM joins the GI the previous one reserved) until the fourth is refused; two admins racing
//! for the last slot get one each at most; a vGPU that starts is counted once; `unassign`
//! frees its slot; an `assign` killed while vCenter adds the vGPU keeps its slot counted
//! until `repair` finishes or undoes it. GPU 1 runs whole-GPU time-sliced vGPUs, which
//! `capacity` counts as the driver publishes them.

mod vmig_support;

use std::process::{Output, Stdio};
use std::time::Duration;

use vmig_support::{Env, agent_cli, host_json, nvml_sim, park, text, vms, wait_for};
use vmig_testkit::{GpuConfig, GpuRule, RunningAgent, Vcsim};

const RTX: &str = "rtx-pro-6000-bse-96gb";
/// A driver with the per-GI vGPU calls (R575 and later, as nvml-sim simulates them).
const DRIVER: &str = "575.57.08";
const HOST: &str = "DC0_C0_H0";
const DC18: &str = "nvidia_dc-1-8c";
/// vCenter's reconfiguration is this slow here, so `assign` can be killed in the middle of it.
const RECONFIG_DELAY_MS: u32 = 1000;

/// GPU 0's GIs in the report: (id, profile, placement start).
fn gis(r: &serde_json::Value) -> Vec<(u64, String, u64)> {
    host_json(r, HOST).map_or_else(Vec::new, |h| {
        h["gpus"][0]["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                (
                    i["gi_id"].as_u64().unwrap_or(u64::MAX),
                    i["profile"].as_str().unwrap_or_default().to_string(),
                    i["placement"]["start"].as_u64().unwrap_or(u64::MAX),
                )
            })
            .collect()
    })
}

fn capacity(env: &Env, profile: &str, count: &str, code: i32) -> serde_json::Value {
    env.vmig_json(&["capacity", "--profile", profile, "--count", count], code)
}

fn assign(env: &Env, vm: &str) -> Output {
    env.vmig(&["--json", "assign", "--vm", vm, "--profile", DC18])
}

/// The simulated host and its agent, GPU 0 laid out; the GI left for vGPUs.
struct Rig {
    env: Env,
    rt: tokio::runtime::Runtime,
    c: vcenter_client::Client,
    state: std::path::PathBuf,
    log: std::path::PathBuf,
    /// GPU 0's free `1g.24gb` GI: id and placement start.
    free: (u64, u64),
    _agent: RunningAgent,
}

impl Rig {
    fn agent_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn setup() -> Rig {
    let builder = Vcsim::builder()
        .hosts_per_cluster(2)
        .vms(6)
        .method_delay("ReconfigVM_Task", RECONFIG_DELAY_MS)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::hosts(HOST).gpu(RTX, 2)));
    let env = Env::start(builder, "vmig-timesliced-e2e");
    let rt = Env::runtime();
    let c = env.client(&rt);
    let uuid = vmig_support::host_bios_uuid(&rt, &c, HOST);

    // The GPU machine: GPU 1 leaves MIG mode (pending until its reset, as on the driver);
    // GPU 0 gets a 2g.48gb and two 1g.24gb GIs, which fill its memory.
    let state = env.path("nvml-sim.json");
    nvml_sim(
        &state,
        &[
            "init",
            "--mig",
            "--driver-version",
            DRIVER,
            "--platform",
            "esxi",
            "--gpu",
            RTX,
            "--gpu",
            RTX,
        ],
    );
    agent_cli(&state, &["mig", "mode", "-i", "1", "--disable"]);
    nvml_sim(&state, &["reset", "-i", "1"]);
    agent_cli(
        &state,
        &["mig", "cgi", "-i", "0", "2g.48gb,1g.24gb,1g.24gb", "-C"],
    );
    let config = vmig_support::agent_config(
        env.dir.path(),
        &env.vc,
        &uuid,
        "heartbeat_interval_s = 60\n",
    );
    let log = env.path("agent.log");
    let agent = RunningAgent::start(&config, &state, &log);

    let r = wait_for(Duration::from_secs(120), "the agent's report", || {
        let r = env.vmig_json(&["report"], 0);
        (gis(&r).len() == 3).then_some(r)
    });
    let layout = gis(&r);
    // Processes take the 2g.48gb GI and one 1g.24gb GI: one 1g.24gb GI is left for vGPUs.
    let (big, _, _) = layout.iter().find(|g| g.1 == "2g.48gb").expect("2g GI");
    let ones: Vec<&(u64, String, u64)> = layout.iter().filter(|g| g.1 == "1g.24gb").collect();
    let (busy, free) = (ones[0], ones[1]);
    for (gi, pid) in [(big, "4001"), (&busy.0, "4002")] {
        nvml_sim(
            &state,
            &[
                "occupy",
                "-i",
                "0",
                "--gi",
                &gi.to_string(),
                "--ci",
                "0",
                "--pid",
                pid,
            ],
        );
    }
    wait_for(Duration::from_secs(60), "the processes reported", || {
        let r = env.vmig_json(&["report"], 0);
        let h = host_json(&r, HOST)?;
        let busy_gis = h["gpus"][0]["instances"]
            .as_array()?
            .iter()
            .filter(|i| i["in_use"] == true)
            .count();
        (busy_gis == 2).then_some(())
    });
    Rig {
        env,
        rt,
        c,
        state,
        log,
        free: (free.0, free.2),
        _agent: agent,
    }
}

/// `capacity` and the report count the free GI's three slots and GPU 1's whole-GPU vGPUs.
fn counts_slots_and_whole_gpus(rig: &Rig) {
    let (env, free) = (&rig.env, rig.free);
    // capacity: GPU 0's free GI has three DC-1-8C slots, no other GI of its profile fits.
    let cap = capacity(env, DC18, "4", 4);
    assert_eq!(cap["available"], 3, "{cap:#}\n{}", rig.agent_log());
    assert_eq!(cap["profiles"], serde_json::json!(["1g.24gb"]));
    let joined: Vec<_> = cap["plan"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["joins_gi"].as_u64(), p["slots_left"].as_u64()))
        .collect();
    assert_eq!(
        joined,
        [
            (Some(free.0), Some(2)),
            (Some(free.0), Some(1)),
            (Some(free.0), Some(0))
        ]
    );
    // Whole-GPU time-sliced vGPUs on GPU 1 (no MIG): as the driver publishes them.
    let ts = capacity(env, "nvidia_dc-24c", "2", 0);
    assert_eq!(ts["available"], 4, "{ts:#}");
    assert_eq!(ts["plan"][0]["gpu_index"], 1);
    assert!(ts["plan"][0].get("placement").is_none(), "{ts:#}");
    assert!(ts["plan"][0].get("fragmentation_after").is_none(), "{ts:#}");
    // The report's "can still place" counts the same slots and whole-GPU vGPUs.
    let r = env.vmig_json(&["report"], 0);
    let can_place = &r["vcenters"][0]["datacenters"][0]["clusters"][0]["capacity"];
    for (t, profile, count) in [(DC18, "1g.24gb", 3), ("nvidia_dc-24c", "time-sliced", 4)] {
        let found = can_place
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["vgpu_type"] == t);
        assert_eq!(
            found.map(|c| (c["profile"].clone(), c["count"].clone())),
            Some((profile.into(), count.into())),
            "{can_place:#}"
        );
    }
    // assign refuses a whole-GPU type (vSphere places it at power-on), changing nothing.
    let out = env.vmig(&[
        "assign",
        "--vm",
        "DC0_C0_RP0_VM0",
        "--profile",
        "nvidia_dc-24c",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("whole-GPU time-sliced"),
        "{}",
        text(&out)
    );
}

/// Slot by slot until refusal, with two admins racing for the last slot; returns the VMs
/// (the first two and the racers' winner hold slots, the fifth was refused).
fn fills_the_gi(rig: &Rig) -> Vec<String> {
    let (env, rt, c, free) = (&rig.env, &rig.rt, &rig.c, rig.free);
    // Five powered-off VMs on the host.
    let ours: Vec<String> = vms(rt, c)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("DC0_C0_RP0"))
        .take(5)
        .map(|(n, vm_ref, _)| {
            park(rt, c, &vm_ref, HOST);
            n
        })
        .collect();

    // Slot by slot: each VM joins the GI, at its placement, on GPU 0.
    for (n, vm) in ours[..2].iter().enumerate() {
        let out = assign(env, vm);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let a: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(a["host"], HOST);
        assert_eq!(a["placement"]["start"], free.1, "{a:#}");
        assert_eq!(a["time_sliced"], true, "{a:#}");
        assert_eq!(a["reservation"]["time_sliced"], true, "{a:#}");
        let cap = capacity(env, DC18, "1", 0);
        assert_eq!(cap["available"], 3 - (n as u64 + 1));
        // The report's "n more fit" on that GI counts the reservations as capacity does.
        let r = env.vmig_json(&["report"], 0);
        let gi = host_json(&r, HOST)
            .and_then(|h| {
                h["gpus"][0]["instances"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|i| i["gi_id"].as_u64() == Some(free.0))
                    .cloned()
            })
            .expect("the free GI in the report");
        assert_eq!(gi["more_vgpus"], 3 - (n as u64 + 1), "{gi:#}");
    }
    // Two admins race for the last slot: one wins, the other is refused, nothing overbooked.
    let outs = vmig_support::race_one_wins(
        ours[2..4]
            .iter()
            .map(|vm| env.vmig_cmd(&["--json", "assign", "--vm", vm, "--profile", DC18])),
    );
    let loser = outs.iter().find(|o| o.status.code() != Some(0)).unwrap();
    assert_eq!(loser.status.code(), Some(4), "{}", text(loser));
    let cap = capacity(env, DC18, "1", 4);
    assert_eq!(cap["available"], 0);
    // The fifth VM is refused: the GI is full and no other GI can be created.
    let out = assign(env, &ours[4]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("no host of DC0_C0"),
        "names where it looked: {}",
        text(&out)
    );
    let r = env.vmig_json(&["report"], 0);
    assert!(
        !r["warnings"].to_string().contains("overbooked"),
        "{:#}",
        r["warnings"]
    );

    ours
}

#[test]
fn an_rtx_pro_6000_gi_fills_slot_by_slot_through_vmig_until_refusal() {
    let rig = setup();
    counts_slots_and_whole_gpus(&rig);
    let ours = fills_the_gi(&rig);
    let (env, state, free) = (&rig.env, &rig.state, rig.free);
    // The first VM powers on: its vGPU runs in the GI; counted once, not twice.
    nvml_sim(
        state,
        &[
            "occupy",
            "-i",
            "0",
            "--gi",
            &free.0.to_string(),
            "--vgpu",
            "NVIDIA DC-1-8C",
            "--vm",
            &ours[0],
        ],
    );
    let r = wait_for(Duration::from_secs(60), "the running vGPU", || {
        let r = env.vmig_json(&["report"], 0);
        let h = host_json(&r, HOST)?;
        h["gpus"][0]["instances"]
            .as_array()?
            .iter()
            .any(|i| i["vgpus"].to_string().contains(ours[0].as_str()))
            .then_some(r)
    });
    let statuses: Vec<String> = host_json(&r, HOST).unwrap()["gpus"][0]["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            format!(
                "{}={}",
                x["vm"].as_str().unwrap(),
                x["status"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        statuses.contains(&format!("{}=running", ours[0])),
        "{statuses:?}"
    );
    assert_eq!(capacity(env, DC18, "1", 4)["available"], 0);

    // unassign frees a slot; the refused VM now fits, in the same GI.
    let u = env.vmig_json(&["unassign", "--vm", &ours[1]], 0);
    assert_eq!(u["removed"].as_array().map(Vec::len), Some(1), "{u:#}");
    assert_eq!(capacity(env, DC18, "1", 0)["available"], 1);
    killed_then_repaired(&rig, &ours[4]);
    assert!(!rig.agent_log().contains("panicked"), "{}", rig.agent_log());
}

/// `assign` SIGKILLed while vCenter adds the vGPU (`ReconfigVM_Task` is slowed down for
/// this test): the half-done reservation keeps its slot counted, and `repair` finishes or
/// undoes it; either way the slot count agrees with the VM.
fn killed_then_repaired(rig: &Rig, vm: &str) {
    let (env, rt, c) = (&rig.env, &rig.rt, &rig.c);
    let vm_ref = vms(rt, c)
        .into_iter()
        .find(|(n, _, _)| n == vm)
        .map(|(_, r, _)| r)
        .expect("the VM");
    let state = || vmig_support::vm_state(rt, c, &vm_ref, &[HOST]);
    let mut child = env
        .vmig_cmd(&["--json", "assign", "--vm", vm, "--profile", DC18])
        .env("VMIG_LOCK_STALE_S", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn vmig");
    wait_for(
        Duration::from_secs(60),
        "assign at step configuring",
        || {
            state()
                .1
                .filter(|r| r["step"] == "configuring" && r["time_sliced"] == true)
                .map(drop)
        },
    );
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(
        capacity(env, DC18, "1", 4)["available"],
        0,
        "a half-done assign keeps its slot"
    );
    // Let the reconfiguration in flight land, then repair.
    std::thread::sleep(Duration::from_millis(u64::from(RECONFIG_DELAY_MS) + 200));
    let out = env
        .vmig_cmd(&["--json", "repair"])
        .env("VMIG_LOCK_STALE_S", "2")
        .output()
        .expect("repair");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (vgpus, res, _) = state();
    match res {
        Some(r) => {
            assert_eq!(vgpus, [DC18], "rolled forward: {r:#}");
            assert_eq!(r["step"], "done");
            assert_eq!(capacity(env, DC18, "1", 4)["available"], 0);
        }
        None => {
            assert!(vgpus.is_empty(), "rolled back: {vgpus:?}");
            assert_eq!(capacity(env, DC18, "1", 0)["available"], 1);
        }
    }
}
