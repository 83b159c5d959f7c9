//! Utilization end to end: nvml-sim simulates what three VMs' vGPUs do (`nvml-sim load`), a
//! real `vmig-agent run` samples them through NVML and publishes the 1 h / 24 h summaries in
//! `vmig.mig`, and `vmig report` (JSON, table, CSV, HTML) and `vmig rightsize` read them back
//! from the simulator.

mod vmig_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vmig_support::{Env, nvml_sim, text, wait_for};
use vmig_testkit::{GpuConfig, GpuRule, RunningAgent, Vcsim, nvml_sim_lib, workspace_bin};

const A100: &str = "a100-pcie-40gb";

/// Creates a GI of `profile` at `start` (with its default CI) and starts `vm`'s vGPU on it.
fn vgpu_on(state: &Path, profile: &str, start: &str, vgpu: &str, vm: &str) {
    let out = Command::new(workspace_bin("vmig-agent"))
        .arg("--nvml-lib")
        .arg(nvml_sim_lib())
        .args(["mig", "cgi", "-i", "0", profile, "--placement", start, "-C"])
        .env("NVML_SIM_STATE", state)
        .env_remove("VMIG_LOG")
        .output()
        .expect("run vmig-agent");
    assert!(out.status.success(), "cgi {profile}: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let gi = stdout
        .split("GPU instance ID")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no GI id in {stdout}"))
        .to_string();
    nvml_sim(
        state,
        &["occupy", "-i", "0", "--gi", &gi, "--vgpu", vgpu, "--vm", vm],
    );
}

fn gpu0(r: &serde_json::Value) -> Option<&serde_json::Value> {
    r["vcenters"][0]["datacenters"][0]["clusters"]
        .as_array()?
        .iter()
        .flat_map(|c| c["hosts"].as_array().into_iter().flatten())
        .find(|h| h["name"] == "DC0_C0_H0")
        .map(|h| &h["gpus"][0])
}

fn uuid_gpu(r: &serde_json::Value) -> String {
    gpu0(r)
        .and_then(|g| g["uuid"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn instance<'a>(g: &'a serde_json::Value, vm: &str) -> Option<&'a serde_json::Value> {
    g["instances"].as_array()?.iter().find(|i| i["vm"] == vm)
}

#[test]
fn sampled_load_reaches_the_report_and_rightsize() {
    let builder = Vcsim::builder()
        .hosts_per_cluster(1)
        .vms(1)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::hosts("DC0_C0_H0").gpu(A100, 1)));
    let env = Env::start(builder, "vmig-usage-e2e");
    let rt = Env::runtime();
    let c = env.client(&rt);
    let uuid = vmig_support::host_bios_uuid(&rt, &c, "DC0_C0_H0");
    let host_moref = vmig_support::host_ref(&rt, &c, "DC0_C0_H0")
        .as_moref()
        .clone();

    // Three VMs: a quiet one on a 3g.20gb, an idle one on a 2g.10gb, a busy one on a 1g.5gb.
    let state = env.path("nvml-sim.json");
    nvml_sim(&state, &["init", "--mig", "--gpu", A100]);
    vgpu_on(&state, "3g.20gb", "4", "grid_a100-3-20c", "vm-quiet");
    vgpu_on(&state, "2g.10gb", "0", "grid_a100-2-10c", "vm-idle");
    vgpu_on(&state, "1g.5gb", "2", "grid_a100-1-5c", "vm-busy");
    nvml_sim(
        &state,
        &[
            "load",
            "--vm",
            "vm-quiet",
            "--phase",
            "sm=20,mem=10,fb=3000,s=3600",
        ],
    );
    nvml_sim(
        &state,
        &[
            "load",
            "--vm",
            "vm-busy",
            "--phase",
            "sm=95,mem=60,fb=4000,s=3600",
        ],
    );
    nvml_sim(&state, &["load", "-i", "0", "--ecc-corrected", "2"]);

    let config = write_config(env.dir.path(), &env.vc, &uuid);
    let log = env.path("agent.log");
    let _agent = RunningAgent::start(&config, &state, &log);
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The report shows each slice's utilization once the agent has sampled all three.
    let r = wait_for(
        Duration::from_secs(120),
        "utilization of all three VMs in the report",
        || {
            let r = env.vmig_json(&["report"], 0);
            let g = gpu0(&r)?;
            ["vm-quiet", "vm-idle", "vm-busy"]
                .iter()
                .all(|vm| instance(g, vm).is_some_and(|i| i["usage"]["windows"].is_array()))
                .then(|| r.clone())
        },
    );
    let g = gpu0(&r).unwrap();
    let quiet = &instance(g, "vm-quiet").unwrap()["usage"];
    assert_eq!(quiet["vm"], "vm-quiet", "{}", agent_log());
    let day = quiet["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["window_s"] == 86_400)
        .expect("24 h window");
    assert_eq!(day["sm"], serde_json::json!([20, 20, 20]));
    assert_eq!(day["mem"], serde_json::json!([10, 10, 10]));
    assert_eq!(day["fb_mib"], serde_json::json!([3000, 3000, 3000]));
    let idle = &instance(g, "vm-idle").unwrap()["usage"]["windows"][0];
    assert_eq!(idle["sm"], serde_json::json!([0, 0, 0]));
    xids_are_counted_reported_and_posted(&env, &rt, &c, &host_moref, &state, g, &agent_log);

    // Table, CSV and HTML show it too.
    let table = text(&env.vmig(&["report"]));
    assert!(
        table.contains("24h: SM 20/20/20% mem 10/10/10% FB 3000/3000/3000 MiB"),
        "{table}"
    );
    let csv = text(&env.vmig(&["report", "--format", "csv"]));
    assert!(csv.contains("gi_usage,agent_detail"), "{csv}");
    assert!(csv.contains("24h: SM 95/95/95%"), "{csv}");
    let html = text(&env.vmig(&["report", "--format", "html"]));
    assert!(
        html.contains("class=\"util\""),
        "the HTML drawing has utilization bars"
    );
    assert!(
        html.contains("24h: SM 20/20/20%"),
        "and the figures in the GI's title"
    );

    // Rightsize: the quiet 3g fits on a 1g.5gb (frees 3 memory / 2 compute slices), the idle
    // VM is idle, the busy one fits its profile.
    let rs = env.vmig_json(
        &["rightsize", "--cluster", "DC0_C0", "--min-coverage-h", "0"],
        0,
    );
    let find = |vm: &str| {
        rs["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["vm"] == vm)
            .unwrap_or_else(|| panic!("{vm} missing in {rs:#}"))
            .clone()
    };
    let q = find("vm-quiet");
    assert_eq!(q["verdict"], "oversized", "{rs:#}");
    assert_eq!(q["smaller"]["profile"], "1g.5gb");
    assert_eq!(q["smaller"]["vgpu_type"], "grid_a100-1-5c");
    assert_eq!(q["smaller"]["frees_memory_slices"], 3);
    assert_eq!(q["smaller"]["frees_compute_slices"], 2);
    assert_eq!(q["peak_fb_mib"], 3000);
    assert_eq!(find("vm-idle")["verdict"], "idle");
    assert_eq!(find("vm-busy")["verdict"], "fits");
    // With the default coverage (1 h) a few seconds of samples are not judged.
    let rs = env.vmig_json(&["rightsize"], 0);
    assert!(
        rs["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["verdict"] == "too_little_data"),
        "{rs:#}"
    );
    let t = text(&env.vmig(&["rightsize", "--min-coverage-h", "0"]));
    assert!(
        t.contains("vm-quiet") && t.contains("OVERSIZED: 1g.5gb"),
        "{t}"
    );
}

/// The XID part of the end-to-end test: ECC and XID counts in the GPU view, then three XIDs
/// injected with `nvml-sim xid` reach the document, every report format and vCenter's events.
fn xids_are_counted_reported_and_posted(
    env: &Env,
    rt: &tokio::runtime::Runtime,
    c: &vcenter_client::Client,
    host_moref: &vcenter_client::MoRef,
    state: &Path,
    g: &serde_json::Value,
    agent_log: &dyn Fn() -> String,
) {
    // The GPU's ECC counts are in the GPU view; XIDs are watched (count 0) before any occurs.
    assert_eq!(
        g["ecc"],
        serde_json::json!({"corrected": 2, "uncorrected": 0}),
        "{}",
        agent_log()
    );
    assert_eq!(g["xid"]["total"], 0, "{g:#}\n{}", agent_log());

    // An XID on the busy VM's GI (nvmlEventSetWait_v2 through the real FFI path) is counted,
    // published, shown by the report and posted as a vCenter event.
    let busy_gi = instance(g, "vm-busy").unwrap()["gi_id"].to_string();
    nvml_sim(
        state,
        &["xid", "--gpu", "0", "--xid", "79", "--gi", &busy_gi],
    );
    nvml_sim(state, &["xid", "--gpu", "0", "--xid", "13"]);
    nvml_sim(
        state,
        &["xid", "--gpu", "0", "--xid", "79", "--gi", &busy_gi],
    );
    let r = wait_for(Duration::from_secs(60), "3 XIDs in the report", || {
        let r = env.vmig_json(&["report"], 0);
        (gpu0(&r)?["xid"]["total"] == 3).then(|| r.clone())
    });
    let xid = &gpu0(&r).unwrap()["xid"];
    assert_eq!(
        xid["codes"],
        serde_json::json!([{"xid": 79, "count": 2}, {"xid": 13, "count": 1}]),
        "most recent code first"
    );
    assert_eq!(xid["last"]["xid"], 79);
    assert_eq!(xid["last"]["gi_id"].to_string(), busy_gi);
    let at = xid["last"]["at"].as_str().expect("last.at");
    assert!(at.len() >= 20 && at.ends_with('Z'), "{at}");
    let table = text(&env.vmig(&["report"]));
    let errors = format!(
        "errors: ECC corrected 2 uncorrected 0 · XID 3 since agent start (79×2, 13×1; last 79 on GI {busy_gi} at {at})"
    );
    assert!(table.contains(&errors), "{table}");
    let csv = text(&env.vmig(&["report", "--format", "csv"]));
    assert!(csv.contains("gpu_errors,gi_usage,agent_detail"), "{csv}");
    assert!(csv.contains("XID 3 since agent start"), "{csv}");
    let html = text(&env.vmig(&["report", "--format", "html"]));
    assert!(
        html.contains("title=\"ECC corrected 2 uncorrected 0 · XID 3"),
        "the GPU title's tooltip names the errors"
    );
    let posted = wait_for(Duration::from_secs(60), "the XID events in vCenter", || {
        let events = rt.block_on(c.host_events(host_moref)).ok()?;
        let xids: Vec<String> = events
            .into_iter()
            .filter(|e| e.event_type_id.as_deref() == Some("com.vmig.mig.gpu.xid"))
            .filter_map(|e| e.message)
            .collect();
        (xids.len() == 3).then_some(xids)
    });
    assert!(
        posted
            .iter()
            .any(|m| m.contains("XID 79 on GPU instance") && m.contains(&uuid_gpu(&r))),
        "{posted:?}"
    );
}

fn write_config(dir: &Path, vc: &Vcsim, host_uuid: &str) -> PathBuf {
    vmig_support::agent_config(
        dir,
        vc,
        host_uuid,
        "heartbeat_interval_s = 2\nsample_interval_s = 1\n",
    )
}
