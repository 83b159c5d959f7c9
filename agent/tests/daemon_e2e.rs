//! End-to-end tests of `vmig-agent run` / `check-config`: the real binary, a real vCenter
//! simulator (govmomi's vcsim, over TLS with a throw-away CA) and the simulated NVML
//! (`nvml-sim`), each test in its own directory with its own simulator; every child process
//! is killed on drop.
//!
//! What is read back from vCenter is read with `vcenter_client` and, where the interop venv
//! exists (`target/venv-pyvmomi`, made by scripts/deps.d), also with pyVmomi.
//!
//! Over 800 lines on purpose: every scenario shares one rig (simulator, nvml-sim machine,
//! config writer, agent process), and the scenarios read best next to it.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mig::report::{FIELD_DOCUMENT, FIELD_SUMMARY, HostReport};
use vcenter_client::{Client, ConnectOptions, Credentials, HostProperty, TlsPolicy};
use vmig_testkit::{
    ChildGuard, TempDir, Vcsim, nvml_sim, nvml_sim_lib, temp_dir, wait_for, workspace_bin,
    workspace_root,
};

/// Poll interval the tests give the agent.
const POLL_S: u64 = 2;
/// Long enough for a loaded 2-core machine to build, start and publish.
const START_TIMEOUT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------- helpers

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn vcsim(credentials: Option<(&str, &str)>) -> Vcsim {
    let mut builder = Vcsim::builder();
    if let Some((user, password)) = credentials {
        // Without explicit credentials vcsim accepts any non-empty password.
        builder = builder.credentials(user, password);
    }
    builder.start().unwrap_or_else(|e| panic!("{e}"))
}

/// A vCenter client that trusts the simulator's CA.
fn client(rt: &tokio::runtime::Runtime, vc: &Vcsim) -> Client {
    let ca = vc.ca_pem_path().expect("TLS simulator").to_path_buf();
    rt.block_on(Client::connect(ConnectOptions::new(
        vc.url(),
        Credentials::new(vc.username(), vc.password()),
        TlsPolicy::CaFile(ca),
    )))
    .unwrap_or_else(|e| panic!("test client cannot connect to vcsim: {e}"))
}

/// Host names with their BIOS UUIDs, in inventory order.
fn hosts(rt: &tokio::runtime::Runtime, vc: &Vcsim) -> Vec<(String, String)> {
    let c = client(rt, vc);
    let mut out: Vec<(String, String)> = rt
        .block_on(c.hosts(&[HostProperty::Name, HostProperty::BiosUuid]))
        .expect("hosts")
        .into_iter()
        .map(|h| {
            (
                h.name.unwrap_or_default(),
                h.bios_uuid.map(|u| u.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    let _ = rt.block_on(c.logout());
    out
}

/// The published document and summary on the host named `host`, if any.
fn published(rt: &tokio::runtime::Runtime, vc: &Vcsim, host: &str) -> Option<(HostReport, String)> {
    let c = client(rt, vc);
    let result = rt.block_on(async {
        let defs = c.custom_field_defs().await.ok()?;
        let key = |name: &str| defs.iter().find(|d| d.name == name).map(|d| d.key);
        let (doc_key, summary_key) = (key(FIELD_DOCUMENT)?, key(FIELD_SUMMARY)?);
        let hosts = c
            .hosts(&[HostProperty::Name, HostProperty::CustomValues])
            .await
            .ok()?;
        let h = hosts
            .into_iter()
            .find(|h| h.name.as_deref() == Some(host))?;
        let doc = HostReport::from_json(h.custom_values.get(doc_key)?)
            .expect("a valid vmig.mig/v1 document");
        Some((
            doc,
            h.custom_values
                .get(summary_key)
                .unwrap_or_default()
                .to_string(),
        ))
    });
    let _ = rt.block_on(c.logout());
    result
}

/// One simulated GPU machine (an nvml-sim state file).
struct Machine {
    state: PathBuf,
}

impl Machine {
    fn new(dir: &Path, gpus: &[&str]) -> Machine {
        Machine::with_mig(dir, gpus, true)
    }

    fn with_mig(dir: &Path, gpus: &[&str], mig: bool) -> Machine {
        let state = dir.join("nvml-sim.json");
        let mut args = vec!["init".to_string()];
        if mig {
            args.push("--mig".into());
        }
        for g in gpus {
            args.push("--gpu".into());
            args.push((*g).into());
        }
        let m = Machine { state };
        m.sim(&args.iter().map(String::as_str).collect::<Vec<_>>());
        m
    }

    fn sim(&self, args: &[&str]) -> String {
        nvml_sim(&self.state, args)
    }

    /// `vmig-agent ARGS` against this machine, like an admin in the ESXi shell.
    fn agent_cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(workspace_bin("vmig-agent"))
            .arg("--nvml-lib")
            .arg(nvml_sim_lib())
            .args(args)
            .env("NVML_SIM_STATE", &self.state)
            .env_remove("VMIG_LOG")
            .output()
            .expect("run vmig-agent")
    }
}

/// How the agent is told to trust vCenter.
enum Trust<'a> {
    Ca,
    Pin(&'a str),
}

struct AgentConfig<'a> {
    host_uuid: Option<&'a str>,
    password: &'a str,
    trust: Trust<'a>,
    heartbeat_s: u64,
    /// `[agent] layout_file`, `layout_name`.
    layout: Option<(&'a Path, &'a str)>,
    /// `[vcenter] username` when not the simulator's administrator.
    username: Option<&'a str>,
    /// Further `[agent]` lines.
    agent_extra: &'a str,
}

impl Default for AgentConfig<'_> {
    fn default() -> Self {
        AgentConfig {
            host_uuid: None,
            password: "",
            trust: Trust::Ca,
            heartbeat_s: 60,
            layout: None,
            username: None,
            agent_extra: "",
        }
    }
}

fn write_config(dir: &Path, vc: &Vcsim, c: &AgentConfig<'_>) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let password_file = dir.join("password");
    let password = if c.password.is_empty() {
        vc.password()
    } else {
        c.password
    };
    std::fs::write(&password_file, format!("{password}\n")).expect("write password");
    std::fs::set_permissions(&password_file, std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    let tls = match c.trust {
        Trust::Ca => format!(
            "ca_file = {:?}",
            vc.ca_pem_path().expect("TLS").display().to_string()
        ),
        Trust::Pin(t) => format!("thumbprint = {t:?}"),
    };
    let host = c
        .host_uuid
        .map(|u| format!("[host]\nuuid = {u:?}\n"))
        .unwrap_or_default();
    let text = format!(
        "[vcenter]\nurl = {url:?}\nusername = {user:?}\npassword_file = \"password\"\n{tls}\n\n{host}\n\
         [agent]\npoll_interval_s = {POLL_S}\nheartbeat_interval_s = {hb}\nnvml_lib = {lib:?}\n",
        url = vc.url(),
        user = c.username.unwrap_or(vc.username()),
        hb = c.heartbeat_s,
        lib = nvml_sim_lib().display().to_string(),
    );
    let layout = c
        .layout
        .map(|(file, name)| {
            format!(
                "layout_file = {:?}\nlayout_name = {name:?}\n",
                file.display().to_string()
            )
        })
        .unwrap_or_default();
    let path = dir.join("agent.toml");
    std::fs::write(&path, text + &layout + c.agent_extra).expect("write config");
    path
}

/// A running `vmig-agent run`, logging to a file; killed on drop.
struct Agent {
    guard: ChildGuard,
    log: PathBuf,
}

impl Agent {
    fn start(dir: &Path, machine: &Machine, config: &Path, extra: &[&str]) -> Agent {
        Agent::start_with_env(dir, machine, config, extra, &[])
    }

    fn start_with_env(
        dir: &Path,
        machine: &Machine,
        config: &Path,
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> Agent {
        let log = dir.join(format!(
            "agent-{}.log",
            config.file_stem().and_then(|s| s.to_str()).unwrap_or("x")
        ));
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(workspace_bin("vmig-agent"));
        cmd.arg("run")
            .arg("--config")
            .arg(config)
            .args(["--log-level", "debug"])
            .args(extra)
            .env("NVML_SIM_STATE", &machine.state)
            .envs(env.iter().copied())
            .env_remove("VMIG_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        Agent {
            guard: ChildGuard::spawn("vmig-agent run", &mut cmd).expect("start vmig-agent"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let pid = self.guard.pid().expect("agent running").to_string();
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    fn alive(&mut self) -> bool {
        self.guard.try_wait().expect("try_wait").is_none()
    }

    /// SIGTERM; returns the exit status and how long the agent took to exit.
    fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        self.signal("-TERM");
        let status = wait_for(
            Duration::from_secs(10),
            "the agent to exit after SIGTERM",
            || self.guard.try_wait().expect("try_wait"),
        );
        (status, start.elapsed())
    }
}

struct Rig {
    dir: TempDir,
    rt: tokio::runtime::Runtime,
    vc: Vcsim,
    hosts: Vec<(String, String)>,
}

impl Rig {
    fn new(test: &str) -> Rig {
        Rig::with_credentials(test, None)
    }

    fn with_credentials(test: &str, credentials: Option<(&str, &str)>) -> Rig {
        let dir = temp_dir(test);
        let vc = vcsim(credentials);
        let rt = runtime();
        let hosts = hosts(&rt, &vc);
        assert!(hosts.len() >= 2, "the simulator has hosts: {hosts:?}");
        Rig { dir, rt, vc, hosts }
    }

    fn subdir(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }

    fn published(&self, host: &str) -> Option<(HostReport, String)> {
        published(&self.rt, &self.vc, host)
    }
}

/// pyVmomi's view of a host's custom attributes (name → value), when the interop venv exists.
fn pyvmomi_custom_values(
    vc: &Vcsim,
    host: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    let python = workspace_root().join("target/venv-pyvmomi/bin/python");
    if !python.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing: scripts/install-deps.sh creates the pyVmomi venv",
            python.display()
        );
        eprintln!(
            "skipping the pyVmomi read-back: {} is missing",
            python.display()
        );
        return None;
    }
    let script = r#"
import json, ssl, sys
from pyVim.connect import SmartConnect, Disconnect
from pyVmomi import vim
url, user, pwd, ca, name = sys.argv[1:6]
hostport = url.split("://", 1)[1].split("/", 1)[0]
host, port = hostport.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=ca)
si = SmartConnect(host=host, port=int(port), user=user, pwd=pwd, sslContext=ctx)
content = si.RetrieveContent()
names = {f.key: f.name for f in content.customFieldsManager.field}
view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
out = {}
for h in view.view:
    if h.name == name:
        for v in h.customValue:
            out[names.get(v.key, str(v.key))] = v.value
print(json.dumps(out))
Disconnect(si)
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args([vc.url(), vc.username(), vc.password()])
        .arg(vc.ca_pem_path().expect("TLS"))
        .arg(host)
        .output()
        .expect("run pyVmomi");
    assert!(
        out.status.success(),
        "pyVmomi read-back failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("pyVmomi output is JSON"))
}

// ---------------------------------------------------------------- tests

/// The main job: check-config passes, the agent finds its host by UUID, publishes, and a MIG
/// change made with `vmig-agent mig cgi` is in vCenter within one poll interval plus a second.
#[test]
fn publishes_and_follows_a_mig_change() {
    let rig = Rig::new("daemon-publish");
    let (host, uuid) = rig.hosts[0].clone();
    let machine = Machine::new(rig.dir.path(), &["a100-pcie-40gb"]);
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid),
            ..Default::default()
        },
    );

    let check = machine.agent_cli(&["check-config", "--config", config.to_str().expect("utf-8")]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "check-config failed:\n{report}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(report.contains(&format!("ok    host: {host}")), "{report}");
    assert!(report.contains("ok    NVML: 1 GPU(s)"), "{report}");

    let agent = Agent::start(rig.dir.path(), &machine, &config, &[]);
    let (doc, summary) = wait_for(START_TIMEOUT, "the first publication", || {
        rig.published(&host)
    });
    assert_eq!(doc.schema, "vmig.mig/v1");
    assert_eq!(doc.host_uuid, uuid);
    assert_eq!(doc.gpus.len(), 1);
    assert_eq!(doc.gpus[0].name, "NVIDIA A100-PCIE-40GB");
    assert!(doc.gpus[0].gpu_instances.is_empty());
    assert_eq!(
        summary.split(" | ").next(),
        Some("1×A100-40GB MIG on"),
        "{summary}"
    );

    let cgi = machine.agent_cli(&["mig", "cgi", "-i", "0", "3g.20gb", "-C"]);
    assert!(
        cgi.status.success(),
        "cgi: {}",
        String::from_utf8_lossy(&cgi.stderr)
    );
    let changed = Instant::now();
    let doc = wait_for(
        Duration::from_secs(POLL_S + 1),
        "the MIG change in vCenter (one poll + 1 s)",
        || {
            rig.published(&host)
                .map(|p| p.0)
                .filter(|d| !d.gpus[0].gpu_instances.is_empty())
        },
    );
    eprintln!(
        "MIG change visible in vCenter {:?} after cgi returned",
        changed.elapsed()
    );
    let gi = &doc.gpus[0].gpu_instances[0];
    assert_eq!(gi.profile, "3g.20gb");
    assert_eq!(gi.compute_instances.len(), 1);
    assert!(gi.compute_instances[0].uuid.starts_with("MIG-"), "{gi:?}");
    assert_eq!(doc.generation, 2, "one change, one generation");

    if let Some(values) = pyvmomi_custom_values(&rig.vc, &host) {
        let text = values.get(FIELD_DOCUMENT).expect("pyVmomi sees vmig.mig");
        assert_eq!(HostReport::from_json(text).expect("valid").generation, 2);
        assert!(
            values
                .get(FIELD_SUMMARY)
                .is_some_and(|s| s.contains("MIG on")),
            "{values:?}"
        );
    }
    let log = agent.log();
    assert!(
        !log.contains(rig.vc.password()),
        "the password must never be logged"
    );
}

/// vCenter goes away and comes back empty (a restart of the simulator loses its inventory
/// state): the agent keeps observing, reconnects, re-creates the attribute definitions and
/// publishes the latest state, without being restarted.
#[test]
fn recovers_when_vcenter_restarts() {
    let mut rig = Rig::new("daemon-restart");
    let (host, uuid) = rig.hosts[0].clone();
    let machine = Machine::new(rig.dir.path(), &["h100-sxm5-80gb"]);
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid),
            ..Default::default()
        },
    );
    let mut agent = Agent::start(rig.dir.path(), &machine, &config, &[]);
    wait_for(START_TIMEOUT, "the first publication", || {
        rig.published(&host)
    });

    rig.vc.kill().expect("stop vcsim");
    let cgi = machine.agent_cli(&["mig", "cgi", "-i", "0", "1g.10gb", "-C"]);
    assert!(
        cgi.status.success(),
        "cgi: {}",
        String::from_utf8_lossy(&cgi.stderr)
    );
    wait_for(
        Duration::from_secs(30),
        "a failed publication attempt",
        || {
            agent
                .log()
                .contains("cannot publish to vCenter")
                .then_some(())
        },
    );
    assert!(
        agent.alive(),
        "the agent keeps running while vCenter is down"
    );
    rig.vc.restart().expect("restart vcsim");

    let doc = wait_for(
        Duration::from_secs(120),
        "republication after the restart",
        || {
            rig.published(&host)
                .map(|p| p.0)
                .filter(|d| d.gpus[0].gpu_instances.len() == 1)
        },
    );
    assert_eq!(doc.gpus[0].gpu_instances[0].profile, "1g.10gb");
    assert!(doc.generation >= 2);
    assert!(agent.alive());
    let (status, _) = agent.terminate();
    assert!(status.success(), "{status:?}\n{}", agent.log());
}

/// A wrong password is a clear, retried error; fixing the file and sending SIGHUP makes the
/// agent publish; SIGTERM ends it cleanly within 2 s.
#[test]
fn wrong_password_is_retried_and_sighup_reloads() {
    let rig = Rig::with_credentials("daemon-password", Some(("svc-vmig", "the-right-password")));
    let (host, uuid) = rig.hosts[1].clone();
    let machine = Machine::new(rig.dir.path(), &["a100-pcie-40gb"]);
    let secret = "not-the-password-1234";
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid),
            password: secret,
            ..Default::default()
        },
    );
    let mut agent = Agent::start(rig.dir.path(), &machine, &config, &[]);
    wait_for(START_TIMEOUT, "two refused logins", || {
        (agent.log().matches("refused the login").count() >= 2).then_some(())
    });
    let log = agent.log();
    assert!(
        log.contains(&format!("refused the login of `{}`", rig.vc.username())),
        "{log}"
    );
    assert!(
        log.contains("password"),
        "the error names the password file: {log}"
    );
    assert!(
        !log.contains(secret),
        "the password must never be logged:\n{log}"
    );
    assert!(agent.alive(), "a wrong password does not crash the agent");
    assert!(rig.published(&host).is_none());

    std::fs::write(
        rig.dir.path().join("password"),
        format!("{}\n", rig.vc.password()),
    )
    .expect("fix password");
    agent.signal("-HUP");
    let (doc, _) = wait_for(Duration::from_secs(90), "publication after SIGHUP", || {
        rig.published(&host)
    });
    assert_eq!(doc.host_uuid, uuid);
    assert!(agent.log().contains("configuration reloaded"));

    let (status, took) = agent.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took < Duration::from_secs(2),
        "SIGTERM → exit took {took:?}"
    );
    assert!(
        agent.log().contains("logged out of vCenter"),
        "{}",
        agent.log()
    );
}

/// A pinned thumbprint that does not match: the TLS check fails before any credential is
/// sent, the agent says so and keeps retrying.
#[test]
fn wrong_thumbprint_refuses_to_send_credentials() {
    let rig = Rig::new("daemon-pin");
    let (host, uuid) = rig.hosts[0].clone();
    let machine = Machine::new(rig.dir.path(), &["a100-pcie-40gb"]);
    let wrong = ["AB"; 32].join(":");
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid),
            trust: Trust::Pin(&wrong),
            ..Default::default()
        },
    );
    let mut agent = Agent::start(rig.dir.path(), &machine, &config, &[]);
    let real = rig.vc.thumbprint().expect("TLS").to_string();
    wait_for(START_TIMEOUT, "the TLS refusal", || {
        agent
            .log()
            .contains("so no credentials were sent")
            .then_some(())
    });
    let log = agent.log();
    assert!(
        log.contains(&real),
        "the error shows the thumbprint seen, to compare: {log}"
    );
    assert!(!log.contains("connected to vCenter"), "{log}");
    assert!(agent.alive());
    assert!(rig.published(&host).is_none());
}

/// Two agents on two hosts (one found by `[host] uuid`, one discovered from its SMBIOS UUID
/// file) publish side by side; a change on one leaves the other's document alone.
#[test]
fn two_agents_on_two_hosts_do_not_overwrite_each_other() {
    let rig = Rig::new("daemon-two");
    let (host_a, uuid_a) = rig.hosts[0].clone();
    let (host_b, uuid_b) = rig.hosts[1].clone();
    let (dir_a, dir_b) = (rig.subdir("a"), rig.subdir("b"));
    let machine_a = Machine::new(&dir_a, &["a100-pcie-40gb"]);
    let machine_b = Machine::new(&dir_b, &["h100-sxm5-80gb", "h100-sxm5-80gb"]);
    let config_a = write_config(
        &dir_a,
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid_a),
            ..Default::default()
        },
    );
    let config_b = write_config(&dir_b, &rig.vc, &AgentConfig::default());
    let bios = dir_b.join("product_uuid");
    std::fs::write(&bios, format!("{}\n", uuid_b.to_uppercase())).expect("write bios uuid");
    let _a = Agent::start(&dir_a, &machine_a, &config_a, &[]);
    let _b = Agent::start(
        &dir_b,
        &machine_b,
        &config_b,
        &["--bios-uuid-file", bios.to_str().expect("utf-8")],
    );

    let (a, _) = wait_for(START_TIMEOUT, "host A's document", || {
        rig.published(&host_a)
    });
    let (b, summary_b) = wait_for(START_TIMEOUT, "host B's document", || {
        rig.published(&host_b)
    });
    assert_eq!((a.host_uuid.as_str(), a.gpus.len()), (uuid_a.as_str(), 1));
    assert_eq!((b.host_uuid.as_str(), b.gpus.len()), (uuid_b.as_str(), 2));
    assert!(summary_b.starts_with("2×H100"), "{summary_b}");

    let cgi = machine_a.agent_cli(&["mig", "cgi", "-i", "0", "1g.5gb,1g.5gb", "-C"]);
    assert!(
        cgi.status.success(),
        "cgi: {}",
        String::from_utf8_lossy(&cgi.stderr)
    );
    wait_for(Duration::from_secs(30), "host A's change", || {
        rig.published(&host_a)
            .filter(|(d, _)| d.gpus[0].gpu_instances.len() == 2)
    });
    let (b_after, _) = rig.published(&host_b).expect("B still published");
    assert_eq!(
        b_after.gpus, b.gpus,
        "host B's document is untouched by host A's agent"
    );
    assert_eq!(b_after.host_uuid, uuid_b);
}

/// A password file that others can read stops the agent before it does anything.
#[test]
fn readable_password_file_refuses_to_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("daemon-perms");
    std::fs::write(dir.path().join("password"), "secret\n").expect("write");
    std::fs::set_permissions(
        dir.path().join("password"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[vcenter]\nurl = \"https://127.0.0.1:1/sdk\"\nusername = \"u\"\npassword_file = \"password\"\ninsecure = true\n",
    )
    .expect("write config");
    let out = Command::new(workspace_bin("vmig-agent"))
        .args(["run", "--config"])
        .arg(&config)
        .env_remove("VMIG_LOG")
        .output()
        .expect("run vmig-agent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to start") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(stderr.contains("mode 0644"), "{stderr}");

    let check = Command::new(workspace_bin("vmig-agent"))
        .args(["check-config", "--offline", "--config"])
        .arg(&config)
        .output()
        .expect("run check-config");
    assert_eq!(check.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&check.stdout).contains("FAIL  password file"));
}

/// With a layout configured, the agent applies it at start (here: MIG mode enable, pending
/// until a GPU reset) and again once the pending mode became current, then publishes the
/// resulting instances.
#[test]
fn enforces_the_layout_once_a_pending_mig_mode_applies() {
    let rig = Rig::new("daemon-layout");
    let (host, uuid) = rig.hosts[0].clone();
    let machine = Machine::with_mig(rig.dir.path(), &["a100-pcie-40gb"], false);
    let layouts = rig.dir.path().join("layouts.yaml");
    std::fs::write(
        &layouts,
        "version: v1\nmig-configs:\n  two-halves:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"3g.20gb\": 2\n",
    )
    .expect("write layouts");
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid),
            layout: Some((&layouts, "two-halves")),
            ..Default::default()
        },
    );
    let check = machine.agent_cli(&[
        "check-config",
        "--offline",
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let agent = Agent::start(rig.dir.path(), &machine, &config, &[]);
    let (doc, summary) = wait_for(START_TIMEOUT, "the pending MIG mode in vCenter", || {
        rig.published(&host)
            .filter(|(d, _)| d.gpus[0].mig_mode.is_some_and(|m| m.pending && !m.current))
    });
    assert!(doc.gpus[0].gpu_instances.is_empty());
    assert!(summary.contains("MIG off (on after reset)"), "{summary}");

    machine.sim(&["reset"]);
    let doc = wait_for(
        Duration::from_secs(60),
        "the layout applied after the reset",
        || {
            rig.published(&host)
                .map(|p| p.0)
                .filter(|d| d.gpus[0].gpu_instances.len() == 2)
        },
    );
    assert!(
        doc.gpus[0]
            .gpu_instances
            .iter()
            .all(|gi| gi.profile == "3g.20gb"),
        "{doc:?}"
    );
    assert!(
        agent
            .log()
            .contains("layout enforced after the pending MIG mode"),
        "{}",
        agent.log()
    );
}

// ---------------------------------------------------------------- issue 16

/// Live sessions in the simulator (`SessionManager.sessionList`), the test client's included.
fn session_count(rt: &tokio::runtime::Runtime, c: &Client) -> usize {
    let sm = c.service_content().session_manager.clone();
    let content = rt
        .block_on(c.retrieve_object(&sm, &["sessionList"]))
        .expect("sessionList");
    content.get("sessionList").map_or(0, |n| n.children().len())
}

/// A wrong `[host] uuid` fails every publication after login: each failure logs its session
/// out, so the agent never holds more than one.
#[test]
fn failed_publications_log_their_sessions_out() {
    let rig = Rig::new("daemon-logout");
    let machine = Machine::new(rig.dir.path(), &["a100-pcie-40gb"]);
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some("00000000-1111-2222-3333-444444444444"),
            ..Default::default()
        },
    );
    let c = client(&rig.rt, &rig.vc);
    let before = session_count(&rig.rt, &c);
    assert!(before >= 1, "the simulator lists the test client's session");
    let mut agent = Agent::start(rig.dir.path(), &machine, &config, &[]);
    let mut most = 0;
    wait_for(START_TIMEOUT, "five failed publications", || {
        most = most.max(session_count(&rig.rt, &c).saturating_sub(before));
        (agent.log().matches("cannot publish to vCenter").count() >= 5).then_some(())
    });
    let after = session_count(&rig.rt, &c).saturating_sub(before);
    assert!(
        most <= 1 && after <= 1,
        "the agent held up to {most} sessions ({after} at the end):\n{}",
        agent.log()
    );
    assert!(agent.alive());
    let (status, _) = agent.terminate();
    assert!(status.success(), "{status:?}");
}

/// A document already at generation u64::MAX in vCenter: the agent does not crash on `+ 1`;
/// it overwrites the value with its own count.
#[test]
fn a_document_at_the_maximum_generation_is_overwritten() {
    let rig = Rig::new("daemon-generation");
    let (host, uuid) = rig.hosts[0].clone();
    let c = client(&rig.rt, &rig.vc);
    let forged = format!(
        r#"{{"schema":"vmig.mig/v1","agent_version":"x","host_uuid":"{uuid}","generation":{},"observed_at":"2026-01-01T00:00:00Z","heartbeat_interval_s":60,"gpus":[]}}"#,
        u64::MAX
    );
    rig.rt.block_on(async {
        let field = c
            .ensure_custom_field(FIELD_DOCUMENT, Some("HostSystem"))
            .await
            .expect("field");
        let hosts = c.hosts(&[HostProperty::Name]).await.expect("hosts");
        let h = hosts
            .iter()
            .find(|h| h.name.as_deref() == Some(host.as_str()))
            .expect("host");
        c.set_custom_value(h.moref.as_moref(), field.key, &forged)
            .await
            .expect("set");
    });
    let machine = Machine::new(rig.dir.path(), &["a100-pcie-40gb"]);
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid),
            ..Default::default()
        },
    );
    let mut agent = Agent::start(rig.dir.path(), &machine, &config, &[]);
    let (doc, _) = wait_for(START_TIMEOUT, "the forged value overwritten", || {
        rig.published(&host).filter(|(d, _)| !d.gpus.is_empty())
    });
    assert!(
        doc.generation <= mig::report::MAX_GENERATION,
        "{}",
        doc.generation
    );
    assert!(agent.alive(), "no crash:\n{}", agent.log());
    let (status, _) = agent.terminate();
    assert!(status.success(), "{status:?}");
}

/// A hung NVML call (nvml-sim stalls while a file exists): the agent reports "NVML stalled"
/// in the document, keeps publishing, and SIGTERM still ends it within 2 s.
#[test]
fn a_stalled_nvml_call_is_reported_and_sigterm_still_works() {
    let rig = Rig::new("daemon-stall");
    let (host, uuid) = rig.hosts[0].clone();
    let machine = Machine::new(rig.dir.path(), &["a100-pcie-40gb"]);
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid),
            ..Default::default()
        },
    );
    let stall = rig.dir.path().join("stall");
    let mut agent = Agent::start_with_env(
        rig.dir.path(),
        &machine,
        &config,
        &[],
        &[("NVML_SIM_STALL_FILE", stall.as_path())],
    );
    wait_for(START_TIMEOUT, "the first publication", || {
        rig.published(&host)
    });
    std::fs::write(&stall, "").expect("stall NVML");
    let (doc, _) = wait_for(Duration::from_secs(60), "the stall in the document", || {
        rig.published(&host).filter(|(d, _)| {
            d.gpus.iter().any(|g| {
                g.error
                    .as_deref()
                    .is_some_and(|e| e.contains("NVML stalled"))
            })
        })
    });
    let error = doc.gpus[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("on GPU 0") || error.contains("reading the GPUs"),
        "{error}"
    );
    assert!(agent.log().contains("NVML stalled"), "{}", agent.log());
    let (status, took) = agent.terminate();
    let _ = std::fs::remove_file(&stall);
    assert!(status.success(), "exit status {status:?}");
    assert!(
        took < Duration::from_secs(2),
        "SIGTERM → exit took {took:?}"
    );
}

/// Hopper on ESXi: MIG mode takes effect without a reset but is lost at every host reboot
/// (docs/mig-model.md). An agent started with a layout that wants MIG enables it again at
/// start and applies the layout at once.
#[test]
fn re_enables_a_lost_hopper_mig_mode_at_start() {
    let rig = Rig::new("daemon-hopper-reboot");
    let (host, uuid) = rig.hosts[0].clone();
    let machine = Machine::with_mig(rig.dir.path(), &["h100-sxm5-80gb"], false);
    // As the host comes back from a reboot: ESXi driver, mode change effective at once.
    machine.sim(&[
        "init",
        "--force",
        "--gpu",
        "h100-sxm5-80gb",
        "--platform",
        "esxi",
        "--mig-activation",
        "immediate",
    ]);
    let layouts = rig.dir.path().join("layouts.yaml");
    std::fs::write(
        &layouts,
        "version: v1\nmig-configs:\n  halves:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"3g.40gb\": 2\n",
    )
    .expect("write layouts");
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid),
            layout: Some((&layouts, "halves")),
            ..Default::default()
        },
    );
    let agent = Agent::start(rig.dir.path(), &machine, &config, &[]);
    let doc = wait_for(
        START_TIMEOUT,
        "MIG re-enabled and the layout applied",
        || {
            rig.published(&host)
                .map(|p| p.0)
                .filter(|d| d.gpus[0].gpu_instances.len() == 2)
        },
    );
    assert!(doc.gpus[0].mig_mode.is_some_and(|m| m.current && m.pending));
    assert!(
        doc.gpus[0]
            .gpu_instances
            .iter()
            .all(|gi| gi.profile == "3g.40gb"),
        "{doc:?}"
    );
    assert!(
        agent.log().contains("layout enforced at start"),
        "{}",
        agent.log()
    );
}

/// With `[agent] nvml_stall_timeout_s = 1` a hung NVML call is reported after one second (the
/// default for a 2 s poll would be 5 s), and `check-config` shows the timeout.
#[test]
fn a_configured_stall_timeout_is_used() {
    let rig = Rig::new("daemon-stall-timeout");
    let (host, uuid) = rig.hosts[0].clone();
    let machine = Machine::new(rig.dir.path(), &["a100-pcie-40gb"]);
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid),
            agent_extra: "nvml_stall_timeout_s = 1\n",
            ..Default::default()
        },
    );
    let check = machine.agent_cli(&[
        "check-config",
        "--offline",
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(report.contains("NVML stall timeout 1 s"), "{report}");
    assert!(
        report.contains("utilization sampled every 10 s")
            && report.contains("desired layout: not read (observe only)"),
        "the defaults are shown: {report}"
    );

    let stall = rig.dir.path().join("stall");
    let mut agent = Agent::start_with_env(
        rig.dir.path(),
        &machine,
        &config,
        &[],
        &[("NVML_SIM_STALL_FILE", stall.as_path())],
    );
    wait_for(START_TIMEOUT, "the first publication", || {
        rig.published(&host)
    });
    std::fs::write(&stall, "").expect("stall NVML");
    wait_for(Duration::from_secs(60), "the stall in the document", || {
        rig.published(&host).filter(|(d, _)| {
            d.gpus.iter().any(|g| {
                g.error
                    .as_deref()
                    .is_some_and(|e| e.contains("NVML stalled"))
            })
        })
    });
    let log = agent.log();
    let first = log
        .lines()
        .find(|l| l.contains("NVML stalled"))
        .unwrap_or_default();
    assert!(
        first.contains("has not returned after 1 s"),
        "the first stall is reported after the configured second: {first}"
    );
    let (status, _) = agent.terminate();
    let _ = std::fs::remove_file(&stall);
    assert!(status.success(), "exit status {status:?}");
}

/// Least privilege: an agent whose role holds only `Global.SetCustomField` cannot create the
/// attribute definitions; `check-config` and `run` both say to run `vmig setup`, and once an
/// administrator has, the same agent publishes with that one privilege.
#[test]
fn an_agent_with_only_set_custom_field_needs_vmig_setup() {
    let rig = Rig::new("daemon-least-privilege");
    let (host, uuid) = rig.hosts[0].clone();
    let machine = Machine::new(rig.dir.path(), &["a100-pcie-40gb"]);
    let admin = client(&rig.rt, &rig.vc);
    let root = admin.service_content().root_folder.as_moref().clone();
    let role = rig
        .rt
        .block_on(admin.add_role("vmig-agent", &["Global.SetCustomField"]))
        .expect("add role");
    rig.rt
        .block_on(admin.set_permission(&root, "svc-agent", false, role, true))
        .expect("grant");
    let config = write_config(
        rig.dir.path(),
        &rig.vc,
        &AgentConfig {
            host_uuid: Some(&uuid),
            username: Some("svc-agent"),
            ..Default::default()
        },
    );
    let config_arg = config.to_str().expect("utf-8");

    let check = machine.agent_cli(&["check-config", "--config", config_arg]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert_eq!(check.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  privileges: missing Global.ManageCustomFields on Folder:")
            && report.contains("run `vmig setup` once"),
        "{report}"
    );

    let mut agent = Agent::start(rig.dir.path(), &machine, &config, &[]);
    wait_for(Duration::from_secs(60), "the `vmig setup` sentence", || {
        agent
            .log()
            .contains(
                "may not create them (privilege Global.ManageCustomFields); run `vmig setup` once",
            )
            .then_some(())
    });
    let defs = rig.rt.block_on(admin.custom_field_defs()).expect("defs");
    assert!(
        !defs.iter().any(|d| d.name.starts_with("vmig.")),
        "the agent created a definition without the privilege: {defs:?}"
    );

    let setup = Command::new(workspace_bin("vmig"))
        .args(["--url", rig.vc.url(), "--ca-file"])
        .arg(rig.vc.ca_pem_path().expect("TLS"))
        .arg("setup")
        .env("GOVC_USERNAME", rig.vc.username())
        .env("GOVC_PASSWORD", rig.vc.password())
        .env_remove("GOVC_URL")
        .output()
        .expect("run vmig setup");
    assert!(
        setup.status.success(),
        "{}{}",
        String::from_utf8_lossy(&setup.stdout),
        String::from_utf8_lossy(&setup.stderr)
    );
    wait_for(
        START_TIMEOUT,
        "the first publication after vmig setup",
        || rig.published(&host),
    );
    assert!(agent.alive(), "{}", agent.log());
    let check = machine.agent_cli(&["check-config", "--config", config_arg]);
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(
        report.contains("ok    privileges: Global.SetCustomField on HostSystem:"),
        "{report}"
    );
    let (status, _) = agent.terminate();
    assert!(status.success(), "exit status {status:?}");
}
