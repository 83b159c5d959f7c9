//! `vmig rollout` end to end on vcsim with real agents on simulated ESXi GPU machines
//! (nvml-sim): a cluster goes from MIG off to `all-balanced` through maintenance mode, the
//! harness playing each reboot (resetting that host's nvml-sim, which applies the pending
//! MIG mode, and restarting its agent): the admin's reboot with `--reboot admin`, vcsim's
//! `RebootHost_Task` with `--reboot host` (the simulator announces each reboot in a file the
//! harness follows). A rollout SIGKILLed half-way is resumed from the record in vCenter; a
//! vCenter restarted mid-way stops the rollout with a clear error and the next run works
//! from what the new vCenter shows; a bad layout is refused before any host enters
//! maintenance mode; a GI in use that maintenance mode does not free stops the rollout
//! naming the host and the VM; a host that does not come back after vmig's reboot stops it
//! at the timeout; a second admin whose clock runs 10 minutes ahead (Debian's `faketime`)
//! does not break a live rollout's cluster lock.

mod vmig_support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use vcenter_client::{Client, HostProperty, HostRef};
use vmig_support::{Env, faketime, nvml_sim, text, wait_for};
use vmig_testkit::{ChildGuard, GpuConfig, GpuRule, HostReboot, Vcsim, workspace_bin};

const A100: &str = "a100-pcie-40gb";
const CLUSTER: &str = "DC0_C0";
/// The rollout lock's stale period: a SIGKILLed rollout's lock is broken this soon.
const STALE_S: &str = "6";

/// One simulated ESXi host: its nvml-sim state, agent config and running agent.
struct Machine {
    name: String,
    host: HostRef,
    dir: PathBuf,
    state: PathBuf,
    config: PathBuf,
    agent: Option<ChildGuard>,
    boots: u32,
    /// The last vcsim reboot announcement this machine followed down, and up.
    followed_down: u32,
    followed_up: u32,
}

impl Machine {
    fn new(env: &Env, name: &str, host: HostRef, uuid: &str) -> Machine {
        let dir = env.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("nvml-sim.json");
        nvml_sim(&state, &["init", "--gpu", A100, "--platform", "esxi"]);
        let config = vmig_support::agent_config(
            &dir,
            &env.vc,
            uuid,
            "heartbeat_interval_s = 60\n\n[layout]\nsource = \"vcenter\"\n",
        );
        let mut m = Machine {
            name: name.into(),
            host,
            dir,
            state,
            config,
            agent: None,
            boots: 0,
            followed_down: 0,
            followed_up: 0,
        };
        m.boot();
        m
    }

    fn boot(&mut self) {
        self.boots += 1;
        let log = self.dir.join(format!("agent-{}.log", self.boots));
        let mut cmd = Command::new(workspace_bin("vmig-agent"));
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .env("NVML_SIM_STATE", &self.state)
            .env_remove("VMIG_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        self.agent = Some(ChildGuard::spawn("vmig-agent run", &mut cmd).expect("start the agent"));
    }

    /// The reboot: the agent dies with the host, the GPUs come back with the pending MIG
    /// mode applied and no instances, the agent starts again.
    fn reboot(&mut self) {
        self.agent = None;
        nvml_sim(&self.state, &["reset"]);
        self.boot();
    }

    /// Plays the machine's side of a `RebootHost_Task` that vcsim announced for this host:
    /// the agent dies when the host goes down; the reset GPUs and a new agent come up with
    /// the host.
    fn follow(&mut self, announced: Option<&HostReboot>) {
        let Some(r) = announced else { return };

        if r.count > self.followed_down {
            self.followed_down = r.count;
            self.agent = None;
        }
        if r.up && r.count > self.followed_up {
            self.followed_up = r.count;
            nvml_sim(&self.state, &["reset"]);
            self.boot();
        }
    }

    /// vCenter restarted: a reboot under way finishes anyway (the machine does not need
    /// vCenter to boot), and the new vcsim counts reboots from 1 again.
    fn vcenter_restarted(&mut self) {
        if self.followed_down > self.followed_up {
            nvml_sim(&self.state, &["reset"]);
            self.boot();
        }
        self.followed_down = 0;
        self.followed_up = 0;
    }
}

fn hosts(rt: &tokio::runtime::Runtime, c: &Client) -> Vec<(String, HostRef, String)> {
    let mut v: Vec<_> = rt
        .block_on(c.hosts(&[HostProperty::Name, HostProperty::BiosUuid]))
        .unwrap()
        .into_iter()
        .filter(|h| h.name.as_deref().is_some_and(|n| n.starts_with("DC0_C0_")))
        .map(|h| {
            (
                h.name.clone().unwrap(),
                h.moref.clone(),
                h.bios_uuid.unwrap().as_str().to_string(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// vcsim from `builder`, a client, and one started machine per host of the cluster
/// (`count` of them).
fn cluster_scene(
    builder: vmig_testkit::VcsimBuilder,
    name: &str,
    count: usize,
) -> (Env, tokio::runtime::Runtime, Client, Vec<Machine>) {
    let env = Env::start(builder, name);
    let rt = Env::runtime();
    let c = env.client(&rt);
    let machines: Vec<Machine> = hosts(&rt, &c)
        .into_iter()
        .map(|(name, host, uuid)| Machine::new(&env, &name, host, &uuid))
        .collect();
    assert_eq!(machines.len(), count);
    (env, rt, c, machines)
}

fn the_cluster(rt: &tokio::runtime::Runtime, c: &Client) -> vcenter_client::Cluster {
    rt.block_on(c.clusters())
        .unwrap()
        .into_iter()
        .find(|cl| cl.name == CLUSTER)
        .expect("the cluster")
}

fn in_mm(rt: &tokio::runtime::Runtime, c: &Client, machines: &[Machine]) -> Vec<String> {
    machines
        .iter()
        .filter(|m| rt.block_on(c.in_maintenance_mode(&m.host)).unwrap())
        .map(|m| m.name.clone())
        .collect()
}

/// Every GPU state of the cluster, by host.
fn states(env: &Env) -> Vec<(String, String)> {
    let shown = env.vmig_json(&["layout", "show", "--cluster", CLUSTER], 0);
    shown["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap().to_string(),
                h["gpus"][0]["state"].as_str().unwrap_or("none").to_string(),
            )
        })
        .collect()
}

fn rollout(env: &Env, extra: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let mut args = vec!["--json", "rollout", "--cluster", CLUSTER];
    args.extend_from_slice(extra);
    let out = env
        .vmig_cmd(&args)
        .env("VMIG_LOCK_STALE_S", STALE_S)
        .output()
        .expect("run vmig");
    (
        out.status.code().unwrap(),
        events_of(&String::from_utf8_lossy(&out.stdout), &text(&out)),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One event per line; an error is one (pretty-printed) object: reads a stream of values.
fn events_of(stdout: &str, context: &str) -> Vec<serde_json::Value> {
    serde_json::Deserializer::from_str(stdout)
        .into_iter::<serde_json::Value>()
        .map(|v| v.unwrap_or_else(|e| panic!("{e}\n{context}")))
        .collect()
}

/// `vmig --json rollout --reboot host EXTRA` while the harness plays the machines' side of
/// the reboots vcsim announces; `tick` runs every 100 ms meanwhile (e.g. to restart vcsim).
fn rollout_following_reboots(
    env: &mut Env,
    machines: &mut [Machine],
    extra: &[&str],
    mut tick: impl FnMut(&mut Env, &mut [Machine]),
) -> (i32, Vec<serde_json::Value>, String) {
    let mut args = vec![
        "--json",
        "rollout",
        "--cluster",
        CLUSTER,
        "--reboot",
        "host",
    ];
    args.extend_from_slice(extra);
    let (out_path, err_path) = (env.path("rollout.stdout"), env.path("rollout.stderr"));
    let mut child = env
        .vmig_cmd(&args)
        .env("VMIG_LOCK_STALE_S", STALE_S)
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("run vmig");
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let status = loop {
        let announced = env.vc.reboots();
        for m in machines.iter_mut() {
            m.follow(announced.get(&m.name));
        }
        tick(env, machines);
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "vmig rollout still runs after 240 s\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    (
        status.code().expect("vmig exited, not killed by a signal"),
        events_of(&stdout, &stderr),
        stderr,
    )
}

#[test]
fn four_hosts_from_mig_off_to_all_balanced() {
    let builder = Vcsim::builder()
        .hosts_per_cluster(4)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::clusters(CLUSTER).gpu(A100, 1)))
        // Time to SIGKILL a rollout in the middle of leaving maintenance mode.
        .method_delay("ExitMaintenanceMode_Task", 3000);
    let (env, rt, c, mut machines) = cluster_scene(builder, "vmig-rollout", 4);
    wait_for(Duration::from_secs(180), "four agents reporting", || {
        let shown = env.vmig_json(&["layout", "show", "--cluster", CLUSTER], 0);
        shown["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["agent"] == "ok")
            .then_some(())
    });

    // A hostile desired layout on the cluster: refused before any host enters maintenance.
    let cluster = the_cluster(&rt, &c);
    rt.block_on(async {
        let key = c
            .ensure_custom_field("vmig.layout", None)
            .await
            .unwrap()
            .key;
        c.set_custom_value(
            cluster.moref.as_moref(),
            key,
            "{\"schema\":\"vmig.layout/v1\"}",
        )
        .await
        .unwrap();
    });
    let (code, _, stderr) = rollout(&env, &["--reboot", "admin"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("no host was put in maintenance mode"),
        "{stderr}"
    );
    assert!(in_mm(&rt, &c, &machines).is_empty());

    env.vmig_json(
        &[
            "layout",
            "set",
            "--cluster",
            CLUSTER,
            "--layout",
            "all-balanced",
        ],
        0,
    );
    wait_for(Duration::from_secs(60), "every host pending-reset", || {
        states(&env)
            .iter()
            .all(|(_, s)| s == "pending-reset")
            .then_some(())
    });

    // Dry run: a plan per host, nothing changed.
    let (code, events, stderr) = rollout(&env, &["--reboot", "admin", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "plan").count(),
        4,
        "{events:?}"
    );
    assert!(in_mm(&rt, &c, &machines).is_empty());

    another_rollout_holds_the_lock(&env, &rt, &c, cluster.moref.value());
    assert!(in_mm(&rt, &c, &machines).is_empty());
    drive_to_done(&env, &rt, &c, &mut machines);

    assert!(
        states(&env).iter().all(|(_, s)| s == "applied"),
        "{:?}",
        states(&env)
    );
    assert!(in_mm(&rt, &c, &machines).is_empty());
    assert!(machines.iter().all(|m| m.boots == 2), "one reboot each");
    let values = rt
        .block_on(c.custom_values(cluster.moref.as_moref()))
        .unwrap();
    let defs = rt.block_on(c.custom_field_defs()).unwrap();
    let key = defs.iter().find(|d| d.name == "vmig.rollout").unwrap().key;
    assert_eq!(
        values.get(key).unwrap_or(""),
        "",
        "the record is removed when done"
    );

    blocked_host_stops_the_rollout(&env, &rt, &c, &machines);
    failed_reboot_stops_the_rollout(&env, &rt, &c, &machines);
}

/// `--reboot host` on a two-host cluster: vmig reboots each host through vcsim's
/// `RebootHost_Task` and the harness follows (agent down, GPUs reset, agent up when vcsim
/// says the host is back). Then vCenter restarts, empty, while the next rollout waits for a
/// rebooted host: vmig stops with exit 1 and says what happened and what to do; run again
/// against the restarted vCenter, it works from what it finds there.
#[test]
fn vmig_reboots_the_hosts_and_survives_a_vcenter_restart() {
    let builder = Vcsim::builder()
        .hosts_per_cluster(2)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::clusters(CLUSTER).gpu(A100, 1)))
        .announce_reboots(Duration::from_millis(500));
    let (mut env, rt, c, mut machines) = cluster_scene(builder, "vmig-rollout-reboot", 2);
    set_cluster_layout(&env, "all-balanced", 120);

    let names: Vec<String> = machines.iter().map(|m| m.name.clone()).collect();
    let events = rollout_to_done(&mut env, &rt, &c, &mut machines, &names);
    let done_hosts: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "done-host")
        .map(|e| e["host"].as_str().unwrap())
        .collect();
    assert_eq!(done_hosts, names, "{events:?}");
    assert!(machines.iter().all(|m| m.boots == 2), "one reboot each");
    assert!(
        env.vc.reboots().values().all(|r| r.count == 1 && r.up),
        "{:?}",
        env.vc.reboots()
    );
    let connected = rt
        .block_on(c.hosts(&[HostProperty::Name, HostProperty::ConnectionState]))
        .unwrap()
        .into_iter()
        .filter(|h| names.contains(h.name.as_ref().unwrap()))
        .all(|h| h.connection_state.as_deref() == Some("connected"));
    assert!(connected, "the hosts are connected again");

    // Back to MIG off, and vCenter restarts (empty) as soon as the first host goes down; it
    // stays away for 3 s, longer than vmig's 2 s poll.
    set_cluster_layout(&env, "all-disabled", 60);
    let mut restarted = false;
    let (code, events, stderr) = rollout_following_reboots(
        &mut env,
        &mut machines,
        &["--timeout-s", "60"],
        |env, machines| {
            if !restarted && env.vc.reboots().values().any(|r| !r.up) {
                restarted = true;
                env.vc.kill().unwrap();
                std::thread::sleep(Duration::from_secs(3));
                env.vc.restart().expect("restart vcsim");
                for m in machines.iter_mut() {
                    m.vcenter_restarted();
                }
            }
        },
    );
    assert!(restarted, "no reboot was announced: {stderr}");
    assert_eq!(code, 1, "{stderr}\n{events:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for says in [
        "vCenter 127.0.0.1:",
        "stopped answering",
        "DC0_C0_H0 (rebooting)",
        "run the same vmig rollout again",
    ] {
        assert!(stderr.contains(says), "the error says {says:?}: {stderr}");
    }

    // The restarted vCenter has no desired layout, record or agent document: once the agents
    // report again the rollout refuses for want of a layout; set again, it reboots only the
    // host that has not been rebooted yet.
    let c = env.client(&rt);
    wait_for(
        Duration::from_secs(120),
        "both agents reporting again",
        || {
            let shown = env.vmig_json(&["layout", "show", "--cluster", CLUSTER], 0);
            let hosts = shown["hosts"].as_array().unwrap();
            (hosts.len() == 2 && hosts.iter().all(|h| h["agent"] == "ok")).then_some(())
        },
    );
    let (code, _, stderr) = rollout(&env, &["--reboot", "host"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no desired layout"), "{stderr}");
    set_cluster_layout(&env, "all-disabled", 60);
    let h1 = names[1].clone();
    rollout_to_done(&mut env, &rt, &c, &mut machines, std::slice::from_ref(&h1));
    assert!(
        machines.iter().all(|m| m.boots == 3),
        "one more reboot each, H0's finished while vCenter was away"
    );

    // vCenter answers but has lost the record (restored from a backup, or restarted between
    // two of vmig's calls): vmig stops and says so rather than take the missing layouts for
    // a change. The admin takes the host out of maintenance mode; the next run finishes.
    set_cluster_layout(&env, "all-balanced", 60);
    let cluster = the_cluster(&rt, &c);
    let mut cleared = false;
    let (code, _, stderr) =
        rollout_following_reboots(&mut env, &mut machines, &["--timeout-s", "60"], |env, _| {
            if !cleared && env.vc.reboots().values().any(|r| !r.up) {
                cleared = true;
                rt.block_on(async {
                    let defs = c.custom_field_defs().await.unwrap();
                    let key = defs.iter().find(|d| d.name == "vmig.rollout").unwrap().key;
                    c.set_custom_value(cluster.moref.as_moref(), key, "")
                        .await
                        .unwrap();
                });
            }
        });
    assert!(cleared, "no reboot was announced: {stderr}");
    assert_eq!(code, 1, "{stderr}");
    for says in [
        "no longer has this rollout's record on cluster DC0_C0",
        "DC0_C0_H0 (rebooting)",
        "run the same vmig rollout again",
    ] {
        assert!(stderr.contains(says), "the error says {says:?}: {stderr}");
    }
    let h0 = &machines[0];
    assert_eq!(in_mm(&rt, &c, &machines), std::slice::from_ref(&h0.name));
    rt.block_on(async {
        let task = c.exit_maintenance_mode(&h0.host, 0).await.unwrap();
        c.wait_for_task(&task, Default::default()).await.unwrap();
    });
    rollout_to_done(&mut env, &rt, &c, &mut machines, std::slice::from_ref(&h1));
}

/// [`rollout_following_reboots`] to the end: exit 0 and a `done` event, vmig rebooted
/// exactly `rebooted` (in order), every GPU `applied`, no host left in maintenance mode.
/// Returns the events.
fn rollout_to_done(
    env: &mut Env,
    rt: &tokio::runtime::Runtime,
    c: &Client,
    machines: &mut [Machine],
    rebooted: &[String],
) -> Vec<serde_json::Value> {
    let (code, events, stderr) =
        rollout_following_reboots(env, machines, &["--timeout-s", "60"], |_, _| {});
    assert_eq!(code, 0, "{stderr}");
    assert!(events.iter().any(|e| e["event"] == "done"), "{events:?}");
    let hosts: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "rebooting")
        .filter_map(|e| e["host"].as_str())
        .collect();
    assert_eq!(hosts, rebooted, "{stderr}");
    assert!(in_mm(rt, c, machines).is_empty(), "{stderr}");
    let states = states(env);
    assert!(states.iter().all(|(_, s)| s == "applied"), "{states:?}");
    events
}

/// Sets `layout` on the cluster and waits until no host is still catching up with it.
fn set_cluster_layout(env: &Env, layout: &str, wait_s: u64) {
    env.vmig_json(
        &["layout", "set", "--cluster", CLUSTER, "--layout", layout],
        0,
    );
    wait_for(
        Duration::from_secs(wait_s),
        "every agent on the layout",
        || {
            let s = states(env);
            (!s.is_empty()
                && s.iter()
                    .all(|(_, st)| st == "pending-reset" || st == "applied"))
            .then_some(())
        },
    );
}

/// `--max-unavailable 2` on a two-host cluster: both hosts enter maintenance mode in one
/// batch and wait for their reboots together; after both reboots the next run finishes both
/// and leaves no host in maintenance mode.
#[test]
fn two_hosts_at_once_with_max_unavailable_2() {
    let builder = Vcsim::builder()
        .hosts_per_cluster(2)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::clusters(CLUSTER).gpu(A100, 1)));
    let (env, rt, c, mut machines) = cluster_scene(builder, "vmig-rollout-batch", 2);
    env.vmig_json(
        &[
            "layout",
            "set",
            "--cluster",
            CLUSTER,
            "--layout",
            "all-balanced",
        ],
        0,
    );
    wait_for(Duration::from_secs(120), "both hosts pending-reset", || {
        let s = states(&env);
        (s.len() == 2 && s.iter().all(|(_, st)| st == "pending-reset")).then_some(())
    });
    let batch = [
        "--reboot",
        "admin",
        "--max-unavailable",
        "2",
        "--timeout-s",
        "60",
    ];
    let (code, events, stderr) = rollout(&env, &batch);
    assert_eq!(code, 7, "{stderr}");
    let mut waiting: Vec<String> = events
        .iter()
        .filter(|e| e["event"] == "waiting-for-reboot")
        .map(|e| e["host"].as_str().unwrap().to_string())
        .collect();
    waiting.sort();
    let mut in_maintenance = in_mm(&rt, &c, &machines);
    in_maintenance.sort();
    assert_eq!(in_maintenance.len(), 2, "both at once: {stderr}");
    assert_eq!(waiting, in_maintenance, "{stderr}");
    for m in &mut machines {
        m.reboot();
    }
    let (code, events, stderr) = rollout(&env, &batch);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        events.iter().filter(|e| e["event"] == "done-host").count(),
        2,
        "{events:?}"
    );
    assert!(in_mm(&rt, &c, &machines).is_empty(), "{stderr}");
    assert!(
        states(&env).iter().all(|(_, s)| s == "applied"),
        "{:?}",
        states(&env)
    );
}

/// `--reboot host` where the host never comes back with its layout (here nobody plays the
/// machine's side of vcsim's reboot, as if the agent did not start): the blocked host from
/// before is released first (its own layout cleared, the cluster's all-balanced is what it
/// has), then the next host that needs a reset is rebooted and stops the rollout at the
/// timeout with exit 6, named, left in maintenance mode.
fn failed_reboot_stops_the_rollout(
    env: &Env,
    rt: &tokio::runtime::Runtime,
    c: &Client,
    machines: &[Machine],
) {
    let (h0, h1) = (&machines[0].name, &machines[1].name);
    env.vmig_json(&["layout", "clear", "--host", h0], 0);
    env.vmig_json(
        &["layout", "set", "--host", h1, "--layout", "all-disabled"],
        0,
    );
    wait_for(
        Duration::from_secs(60),
        "H0 applied, H1 pending-reset",
        || {
            let s = states(env);
            (s.iter().any(|(h, st)| h == h0 && st == "applied")
                && s.iter().any(|(h, st)| h == h1 && st == "pending-reset"))
            .then_some(())
        },
    );
    let (code, events, stderr) = rollout(env, &["--reboot", "host", "--timeout-s", "10"]);
    assert_eq!(code, 6, "{stderr}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "done-host" && e["host"] == h0.as_str()),
        "the resumed host is finished first: {events:?}"
    );
    let stop = events
        .iter()
        .find(|e| e["event"] == "stopped")
        .expect("a stop event");
    assert_eq!(stop["host"], h1.as_str(), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "rebooting" && e["host"] == h1.as_str()),
        "{events:?}"
    );
    assert!(
        stop["message"]
            .as_str()
            .unwrap()
            .contains("waiting for the agent after the reboot"),
        "{stop}"
    );
    assert_eq!(in_mm(rt, c, machines), std::slice::from_ref(h1));
}

/// Runs `rollout --reboot admin` until done, rebooting what it waits for; the second run is
/// SIGKILLed while it leaves maintenance mode and the next run resumes it.
fn drive_to_done(env: &Env, rt: &tokio::runtime::Runtime, c: &Client, machines: &mut [Machine]) {
    for round in 0..12 {
        if round == 1 {
            killed_mid_way(env);
        }
        let (code, events, stderr) = rollout(env, &["--reboot", "admin", "--timeout-s", "60"]);
        let mm = in_mm(rt, c, machines);
        match code {
            0 => {
                assert!(events.iter().any(|e| e["event"] == "done"), "{events:?}");
                return;
            }
            7 => {
                assert_eq!(mm.len(), 1, "--max-unavailable 1: {mm:?}\n{stderr}");
                let waiting: Vec<_> = events
                    .iter()
                    .filter(|e| e["event"] == "waiting-for-reboot")
                    .map(|e| e["host"].as_str().unwrap().to_string())
                    .collect();
                assert_eq!(waiting, mm, "{stderr}");
                let m = machines.iter_mut().find(|m| m.name == mm[0]).unwrap();
                m.reboot();
            }
            other => panic!("rollout exit {other}\n{stderr}"),
        }
    }
    panic!("the rollout did not finish in 12 rounds");
}

/// Another admin's rollout holds the cluster lock (its `vmig.lock.<cluster>` field, value not
/// yet written): this rollout is refused with nothing changed, and runs once it is gone.
fn another_rollout_holds_the_lock(
    env: &Env,
    rt: &tokio::runtime::Runtime,
    c: &Client,
    cluster: &str,
) {
    let def = rt
        .block_on(c.add_custom_field_def(
            &format!("vmig.lock.{cluster}"),
            Some("ClusterComputeResource"),
        ))
        .unwrap();
    let (code, _, stderr) = rollout(env, &["--reboot", "admin"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("another vmig rollout"), "{stderr}");

    // The holder wrote `since` by vCenter's clock just now; an admin whose clock runs 10
    // minutes ahead (stale period 60 s) must still see a live lock: staleness is judged by
    // vCenter's time, never the workstation's.
    if let Some(faketime) = faketime() {
        let cluster_ref = vcenter_client::MoRef::new("ClusterComputeResource", cluster);
        rt.block_on(async {
            let now = c.current_time().await.unwrap();
            let holder =
                format!("{{\"who\":\"admin-b@ws2\",\"what\":\"rollout\",\"since\":\"{now}\"}}");
            c.set_custom_value(&cluster_ref, def.key, &holder)
                .await
                .unwrap();
        });
        let plain = env.vmig_cmd(&[
            "--json",
            "rollout",
            "--cluster",
            CLUSTER,
            "--reboot",
            "admin",
        ]);
        let mut cmd = Command::new(faketime);
        cmd.arg("-f")
            .arg("+10m")
            .arg(plain.get_program())
            .args(plain.get_args());
        for (k, v) in plain.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd
            .env("VMIG_LOCK_STALE_S", "60")
            .current_dir(env.dir.path())
            .output()
            .expect("run vmig under faketime");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        assert!(stderr.contains("another vmig rollout"), "{stderr}");
        assert!(
            !stderr.contains("breaking"),
            "no live lock is broken: {stderr}"
        );
    }
    rt.block_on(c.remove_custom_field_def(def.key)).unwrap();
}

/// Starts a rollout, SIGKILLs it while it waits for ExitMaintenanceMode_Task.
fn killed_mid_way(env: &Env) {
    let err = env.path("killed.stderr");
    let mut cmd = env.vmig_cmd(&[
        "rollout",
        "--cluster",
        CLUSTER,
        "--reboot",
        "admin",
        "--timeout-s",
        "60",
    ]);
    cmd.env("VMIG_LOCK_STALE_S", STALE_S)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap());
    let mut child = cmd.spawn().unwrap();
    let seen = wait_for(
        Duration::from_secs(60),
        "exiting-maintenance or an exit",
        || {
            let log = std::fs::read_to_string(&err).unwrap_or_default();
            if log.contains("exiting maintenance mode") {
                return Some(true);
            }
            child.try_wait().unwrap().map(|_| false)
        },
    );
    assert!(
        seen,
        "{}",
        std::fs::read_to_string(&err).unwrap_or_default()
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // Its cluster lock is left behind; the next rollout breaks it once stale.
    std::thread::sleep(Duration::from_secs(STALE_S.parse::<u64>().unwrap() + 1));
}

/// A VM on a GI that all-1g would destroy; vcsim's maintenance mode does not evacuate, so
/// the GI stays in use and the rollout stops naming the host and the VM.
fn blocked_host_stops_the_rollout(
    env: &Env,
    rt: &tokio::runtime::Runtime,
    c: &Client,
    machines: &[Machine],
) {
    let m = &machines[0];
    let shown: serde_json::Value = serde_json::from_str(&nvml_sim(&m.state, &["show"])).unwrap();
    let gi = shown["gpus"][0]["mig"]["gpu_instances"]
        .as_object()
        .unwrap()
        .values()
        .find(|g| g["profile"] == 9)
        .unwrap()["id"]
        .to_string();
    nvml_sim(
        &m.state,
        &[
            "occupy",
            "-i",
            "0",
            "--gi",
            &gi,
            "--vgpu",
            "grid_a100-3-20c",
            "--vm",
            "VM-stuck",
        ],
    );
    env.vmig_json(
        &["layout", "set", "--host", &m.name, "--layout", "all-1g"],
        0,
    );
    wait_for(Duration::from_secs(60), "blocked-in-use", || {
        states(env)
            .iter()
            .any(|(h, s)| h == &m.name && s == "blocked-in-use")
            .then_some(())
    });
    let (code, events, stderr) = rollout(env, &["--reboot", "admin", "--timeout-s", "8"]);
    assert_eq!(code, 6, "{stderr}");
    let stop = events
        .iter()
        .find(|e| e["event"] == "stopped")
        .expect("a stop event");
    assert_eq!(stop["host"], m.name.as_str(), "{events:?}");
    assert!(
        stop["message"].as_str().unwrap().contains("VM-stuck"),
        "{stop}"
    );
    assert_eq!(
        in_mm(rt, c, machines),
        std::slice::from_ref(&m.name),
        "it stays in maintenance mode"
    );
}
