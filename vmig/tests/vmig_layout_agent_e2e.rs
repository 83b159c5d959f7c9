//! Desired layouts end to end: `vmig layout set` writes the layout into vcsim, a real
//! `vmig-agent run` with `[layout] source = "vcenter"` on a simulated ESXi GPU machine
//! (nvml-sim) reconciles it, and `vmig layout show` reads each GPU's state back: MIG on →
//! `pending-reset` until the harness plays the GPU reset → `applied`; a GI backing a running
//! VM → `blocked-in-use` naming the VM; a hostile desired value → `invalid-layout`, nothing
//! changed; a vCenter restart (desired layout and documents gone) changes nothing on the GPU.

mod vmig_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use vmig_support::{Env, host_ref, nvml_sim, wait_for};
use vmig_testkit::{GpuConfig, GpuRule, RunningAgent, Vcsim};

const A100: &str = "a100-pcie-40gb";
const HOST: &str = "DC0_C0_H0";

/// The GPU row of `HOST` in `vmig layout show --json`, once `ok` says it is the one wanted.
fn gpu_state(env: &Env, ok: impl Fn(&serde_json::Value) -> bool) -> Option<serde_json::Value> {
    let shown = env.vmig_json(&["layout", "show", "--host", HOST], 0);
    let g = shown["hosts"][0]["gpus"][0].clone();
    ok(&g).then_some(g)
}

#[test]
fn agent_reconciles_what_vmig_layout_set_wrote() {
    let builder = Vcsim::builder()
        .hosts_per_cluster(2)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::hosts(HOST).gpu(A100, 1)));
    let mut env = Env::start(builder, "vmig-layout-agent");
    let rt = Env::runtime();
    let c = env.client(&rt);
    let uuid = rt
        .block_on(c.host(
            &host_ref(&rt, &c, HOST),
            &[vcenter_client::HostProperty::BiosUuid],
        ))
        .unwrap()
        .bios_uuid
        .expect("host uuid")
        .as_str()
        .to_string();

    // An ESXi GPU machine with MIG off, and its agent reconciling from vCenter.
    let state = env.path("nvml-sim.json");
    nvml_sim(&state, &["init", "--gpu", A100, "--platform", "esxi"]);
    let config = write_config(env.dir.path(), &env.vc, &uuid);
    let log = env.path("agent.log");
    let mut agent = RunningAgent::start(&config, &state, &log);
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(Duration::from_secs(120), "the agent's first report", || {
        let shown = env.vmig_json(&["layout", "show", "--host", HOST], 0);
        (shown["hosts"][0]["agent"] == "ok").then_some(())
    });

    // Desired all-balanced: MIG must be enabled first, which waits for a reset on ESXi.
    let a = env.vmig_json(
        &[
            "layout",
            "set",
            "--cluster",
            "DC0_C0",
            "--layout",
            "all-balanced",
        ],
        0,
    );
    assert_eq!(a["layout"]["version"], 1);
    let g = wait_for(Duration::from_secs(60), "pending-reset", || {
        gpu_state(&env, |g| g["state"] == "pending-reset")
    });
    assert!(
        g["action"].as_str().unwrap().contains("vmig rollout"),
        "{g:#}"
    );
    assert!(g["reason"].as_str().unwrap().contains("reset"), "{g:#}");

    // The harness plays the reboot: the pending mode applies; the agent creates the layout.
    nvml_sim(&state, &["reset"]);
    let g = wait_for(Duration::from_secs(60), "applied", || {
        gpu_state(&env, |g| g["state"] == "applied")
    });
    assert_eq!(
        g["agent_layout"],
        "all-balanced v1 (vcenter-cluster)",
        "{}",
        agent_log()
    );
    let shown: serde_json::Value = serde_json::from_str(&nvml_sim(&state, &["show"])).unwrap();
    // all-balanced on an A100-40GB: 3g.20gb + 2g.10gb + 2 × 1g.5gb (GI profiles 9, 14, 19).
    let mut profiles: Vec<u64> = shown["gpus"][0]["mig"]["gpu_instances"]
        .as_object()
        .unwrap()
        .values()
        .map(|g| g["profile"].as_u64().unwrap())
        .collect();
    profiles.sort_unstable();
    assert_eq!(profiles, [9, 14, 19, 19], "{shown:#}");

    vcenter_restart_changes_nothing(&mut env, &state, &shown, &agent_log);
    // The old client's pooled connection died with the simulator.
    let c = env.client(&rt);

    // A VM runs on the 3g.20gb GI: all-1g on the host would destroy it, so it is blocked
    // and the VM is named; nothing is destroyed.
    let gi = nvml_gi_of(&shown, 9);
    nvml_sim(
        &state,
        &[
            "occupy",
            "-i",
            "0",
            "--gi",
            &gi,
            "--vgpu",
            "grid_a100-3-20c",
            "--vm",
            "VM-busy",
        ],
    );
    env.vmig_json(&["layout", "set", "--host", HOST, "--layout", "all-1g"], 0);
    let g = wait_for(Duration::from_secs(60), "blocked-in-use", || {
        gpu_state(&env, |g| g["state"] == "blocked-in-use")
    });
    assert!(g["blocked_by"].to_string().contains("VM-busy"), "{g:#}");
    assert!(g["reason"].as_str().unwrap().contains("VM-busy"), "{g:#}");
    let now: serde_json::Value = serde_json::from_str(&nvml_sim(&state, &["show"])).unwrap();
    assert_eq!(nvml_gi_of(&now, 9), gi, "the in-use GI is still there");

    hostile_value_is_invalid_layout(&env, &rt, &c, &state, &now);

    // The host's own agent config names a layout: it wins over vCenter's, and show says so.
    env.vmig_json(
        &["layout", "set", "--host", HOST, "--layout", "all-balanced"],
        0,
    );
    drop(agent);
    let local = env.path("local.yaml");
    std::fs::write(
        &local,
        "version: v1\nmig-configs:\n  keep:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"3g.20gb\": 1\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[layout]",
        &format!(
            "layout_file = {:?}\nlayout_name = \"keep\"\n\n[layout]",
            local.display().to_string()
        ),
    );
    std::fs::write(&config, text).unwrap();
    let log2 = env.path("agent-2.log");
    agent = RunningAgent::start(&config, &state, &log2);
    let g = wait_for(Duration::from_secs(60), "local-override", || {
        gpu_state(&env, |g| g["state"] == "local-override")
    });
    assert!(
        g["agent_layout"].as_str().unwrap().contains("keep (local)"),
        "{g:#}"
    );
    drop(agent);
}

/// vCenter restarts (the simulator comes back with its initial inventory: no desired layout,
/// no agent document): the agent logs in again and republishes, and a desired layout that is
/// gone is not an order to change anything; setting it again is reconciled as `applied`
/// without touching the GPU.
fn vcenter_restart_changes_nothing(
    env: &mut Env,
    state: &Path,
    before: &serde_json::Value,
    agent_log: &dyn Fn() -> String,
) {
    let gis = |v: &serde_json::Value| v["gpus"][0]["mig"]["gpu_instances"].clone();
    env.vc.restart().expect("restart vcsim");
    wait_for(
        Duration::from_secs(120),
        "the agent back after the restart",
        || {
            let shown = env.vmig_json(&["layout", "show", "--host", HOST], 0);
            (shown["hosts"][0]["agent"] == "ok").then_some(())
        },
    );
    let now: serde_json::Value = serde_json::from_str(&nvml_sim(state, &["show"])).unwrap();
    assert_eq!(gis(&now), gis(before), "{}", agent_log());
    env.vmig_json(
        &[
            "layout",
            "set",
            "--cluster",
            "DC0_C0",
            "--layout",
            "all-balanced",
        ],
        0,
    );
    wait_for(Duration::from_secs(60), "applied again", || {
        gpu_state(env, |g| g["state"] == "applied")
    });
    let now: serde_json::Value = serde_json::from_str(&nvml_sim(state, &["show"])).unwrap();
    assert_eq!(gis(&now), gis(before), "{}", agent_log());
}

/// The GI id of the first GI of GI profile `profile_id` in `nvml-sim show` output.
fn nvml_gi_of(show: &serde_json::Value, profile_id: u64) -> String {
    show["gpus"][0]["mig"]["gpu_instances"]
        .as_object()
        .and_then(|o| o.values().find(|g| g["profile"] == profile_id))
        .unwrap_or_else(|| panic!("no GI of profile {profile_id} in {show:#}"))["id"]
        .to_string()
}

/// A hostile value written past vmig: every GPU is invalid-layout, nothing changes.
fn hostile_value_is_invalid_layout(
    env: &Env,
    rt: &tokio::runtime::Runtime,
    c: &vcenter_client::Client,
    state: &Path,
    now: &serde_json::Value,
) {
    let h = host_ref(rt, c, HOST);
    rt.block_on(async {
        let key = c
            .custom_field_defs()
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.name == "vmig.layout")
            .unwrap()
            .key;
        c.set_custom_value(
            h.as_moref(),
            key,
            "{\"schema\":\"vmig.layout/v1\",\"name\":1}",
        )
        .await
        .unwrap();
    });
    let g = wait_for(Duration::from_secs(60), "invalid-layout", || {
        gpu_state(env, |g| g["state"] == "invalid-layout")
    });
    assert!(
        g["reason"].as_str().unwrap().contains("not valid JSON"),
        "{g:#}"
    );
    let after: serde_json::Value = serde_json::from_str(&nvml_sim(state, &["show"])).unwrap();
    assert_eq!(
        after["gpus"][0]["mig"]["gpu_instances"],
        now["gpus"][0]["mig"]["gpu_instances"]
    );
}

fn write_config(dir: &Path, vc: &Vcsim, host_uuid: &str) -> PathBuf {
    vmig_support::agent_config(
        dir,
        vc,
        host_uuid,
        "heartbeat_interval_s = 60\n\n[layout]\nsource = \"vcenter\"\n",
    )
}
