//! End to end with a real agent: `vmig-agent run` on a simulated GPU machine (nvml-sim)
//! publishes to the simulator, and `vmig` reads what it published. `vmig assign` reserves a
//! slice on the agent's GPU; when the VM's vGPU "starts" (nvml-sim marks a GI as backing the
//! VM's vGPU) the agent reports it and the reservation is no longer counted twice, whether
//! NVML names the VM by name or, as ESXi may, by its BIOS UUID.

mod vmig_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use vmig_support::{Env, agent_cli, host_json, nvml_sim, park, vms, wait_for};
use vmig_testkit::{GpuConfig, GpuRule, RunningAgent, Vcsim};

const A100: &str = "a100-pcie-40gb";

/// A VM "powers on" on the simulated GPU: a 3g.20gb GI is created at slice `start` and
/// backs its vGPU, NVML naming the VM `vm_id` (by BIOS UUID when `by_uuid`).
fn power_on(state: &Path, start: &str, vm_id: &str, by_uuid: bool) {
    let cgi = agent_cli(
        state,
        &[
            "mig",
            "cgi",
            "-i",
            "0",
            "3g.20gb",
            "--placement",
            start,
            "-C",
        ],
    );
    // `Successfully created GPU instance ID  1 on GPU  0 using profile …`
    let gi = cgi
        .split("GPU instance ID")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("no GI id in {cgi}"))
        .to_string();
    let mut args = vec![
        "occupy",
        "-i",
        "0",
        "--gi",
        &gi,
        "--vgpu",
        "grid_a100-3-20c",
        "--vm",
        vm_id,
    ];
    if by_uuid {
        args.push("--vm-uuid");
    }
    nvml_sim(state, &args);
}

#[test]
fn vmig_reads_what_a_real_agent_publishes() {
    let builder = Vcsim::builder()
        .hosts_per_cluster(2)
        .vms(2)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::hosts("DC0_C0_H0").gpu(A100, 1)));
    let env = Env::start(builder, "vmig-agent-e2e");
    let rt = Env::runtime();
    let c = env.client(&rt);
    let uuid = vmig_support::host_bios_uuid(&rt, &c, "DC0_C0_H0");

    // The GPU machine and its agent.
    let state = env.path("nvml-sim.json");
    nvml_sim(&state, &["init", "--mig", "--gpu", A100]);
    let config = write_config(env.dir.path(), &env.vc, &uuid);
    let log = env.path("agent.log");
    let _agent = RunningAgent::start(&config, &state, &log);
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // vmig sees the agent's report: fresh, one empty A100 with MIG on.
    let r = wait_for(
        Duration::from_secs(120),
        "the agent's first report in vmig",
        || {
            let r = env.vmig_json(&["report"], 0);
            host_json(&r, "DC0_C0_H0")
                .filter(|h| h["agent"]["status"] == "ok")
                .map(|_| r.clone())
        },
    );
    let h0 = host_json(&r, "DC0_C0_H0").unwrap();
    assert_eq!(
        h0["gpus"][0]["name"],
        "NVIDIA A100-PCIE-40GB",
        "{}",
        agent_log()
    );
    assert_eq!(h0["gpus"][0]["mig_mode"]["current"], true);
    let cap = env.vmig_json(&["capacity", "--profile", "grid_a100-3-20c"], 0);
    assert_eq!(cap["available"], 2);

    // Assign a powered-off VM: the reservation takes one of the two 3g.20gb slots.
    let (vm, vm_ref, _) = vms(&rt, &c)
        .into_iter()
        .find(|(n, _, _)| n.starts_with("DC0_C0_RP0"))
        .unwrap();
    park(&rt, &c, &vm_ref, "DC0_C0_H0");
    let a = env.vmig_json(&["assign", "--vm", &vm, "--profile", "grid_a100-3-20c"], 0);
    assert_eq!(a["host"], "DC0_C0_H0");
    assert_eq!(a["gpu_uuid"], h0["gpus"][0]["uuid"]);
    let start = a["placement"]["start"].as_u64().unwrap().to_string();
    let cap = env.vmig_json(&["capacity", "--profile", "grid_a100-3-20c"], 0);
    assert_eq!(cap["available"], 1, "the reservation is counted");

    // The VM "powers on": the GI is created where vmig planned it and backs the VM's vGPU.
    power_on(&state, &start, &vm, false);
    let r = wait_for(
        Duration::from_secs(60),
        "the agent to report the VM running",
        || {
            let r = env.vmig_json(&["report"], 0);
            let h = host_json(&r, "DC0_C0_H0")?;
            (h["gpus"][0]["instances"][0]["vm"] == vm.as_str()).then(|| r.clone())
        },
    );
    let h0 = host_json(&r, "DC0_C0_H0").unwrap();
    assert_eq!(
        h0["gpus"][0]["reservations"][0]["status"], "running",
        "{:#}",
        h0["gpus"][0]
    );
    let cap = env.vmig_json(&["capacity", "--profile", "grid_a100-3-20c"], 0);
    assert_eq!(
        cap["available"], 1,
        "running and reserved are the same slice, counted once"
    );

    // A second VM, whose running vGPU NVML names by the VM's BIOS UUID.
    let (vm2, vm2_ref, _) = vms(&rt, &c)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("DC0_C0_RP0"))
        .nth(1)
        .unwrap();
    park(&rt, &c, &vm2_ref, "DC0_C0_H0");
    let a = env.vmig_json(&["assign", "--vm", &vm2, "--profile", "grid_a100-3-20c"], 0);
    let start = a["placement"]["start"].as_u64().unwrap().to_string();
    let bios = rt
        .block_on(c.vm(&vm2_ref, &[vcenter_client::VmProperty::Uuid]))
        .unwrap()
        .uuid
        .expect("VM BIOS UUID")
        .as_str()
        .to_uppercase();
    power_on(&state, &start, &bios, true);
    let r = wait_for(
        Duration::from_secs(60),
        "the agent to report the VM by UUID",
        || {
            let r = env.vmig_json(&["report"], 0);
            let h = host_json(&r, "DC0_C0_H0")?;
            h["gpus"][0]["instances"]
                .as_array()?
                .iter()
                .any(|i| i["vm"] == bios.as_str())
                .then(|| r.clone())
        },
    );
    let h0 = host_json(&r, "DC0_C0_H0").unwrap();
    let status = h0["gpus"][0]["reservations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["vm"] == vm2.as_str())
        .map(|x| x["status"].clone());
    assert_eq!(
        status,
        Some(serde_json::json!("running")),
        "{:#}",
        h0["gpus"][0]
    );
    assert!(
        !r["warnings"].to_string().contains("overbooked"),
        "{:#}",
        r["warnings"]
    );
}

fn write_config(dir: &Path, vc: &Vcsim, host_uuid: &str) -> PathBuf {
    vmig_support::agent_config(dir, vc, host_uuid, "heartbeat_interval_s = 60\n")
}
