//! MIG events in vCenter's event log: a real `vmig-agent run` on nvml-sim sees a GPU instance
//! created and destroyed, a MIG mode change pending and applied, and a layout applied, and posts
//! each as an `EventEx` (`com.vmig.mig.*`) on its HostSystem; the events are read back from
//! govmomi's simulator with `vcenter_client` (QueryEvents) and, where the interop venv exists,
//! with pyVmomi.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vcenter_client::{Client, ConnectOptions, Credentials, HostProperty, PostedEvent, TlsPolicy};
use vmig_testkit::{
    RunningAgent, Vcsim, agent_cli_output, nvml_sim, nvml_sim_lib, temp_dir, wait_for,
    workspace_root,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn client(rt: &tokio::runtime::Runtime, vc: &Vcsim) -> Client {
    let ca = vc.ca_pem_path().expect("TLS simulator").to_path_buf();
    rt.block_on(Client::connect(ConnectOptions::new(
        vc.url(),
        Credentials::new(vc.username(), vc.password()),
        TlsPolicy::CaFile(ca),
    )))
    .unwrap_or_else(|e| panic!("test client cannot connect to vcsim: {e}"))
}

fn agent_cli(state: &Path, args: &[&str]) -> String {
    let out = agent_cli_output(state, args);
    assert!(
        out.status.success(),
        "vmig-agent {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_config(dir: &Path, vc: &Vcsim, uuid: &str, layout: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let pw = dir.join("password");
    std::fs::write(&pw, format!("{}\n", vc.password())).unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let text = format!(
        "[vcenter]\nurl = {url:?}\nusername = {user:?}\npassword_file = \"password\"\nca_file = {ca:?}\n\n\
         [host]\nuuid = {uuid:?}\n\n[agent]\npoll_interval_s = 1\nheartbeat_interval_s = 30\nnvml_lib = {lib:?}\n\
         layout_file = {layout:?}\nlayout_name = \"one-3g\"\n",
        url = vc.url(),
        user = vc.username(),
        ca = vc.ca_pem_path().unwrap().display().to_string(),
        lib = nvml_sim_lib().display().to_string(),
        layout = layout.display().to_string(),
    );
    let path = dir.join("agent.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The `com.vmig.*` events on `host`, oldest first.
fn vmig_events(
    rt: &tokio::runtime::Runtime,
    c: &Client,
    host: &vcenter_client::MoRef,
) -> Vec<PostedEvent> {
    let mut events: Vec<PostedEvent> = rt
        .block_on(c.host_events(host))
        .expect("QueryEvents")
        .into_iter()
        .filter(|e| {
            e.event_type_id
                .as_deref()
                .is_some_and(|t| t.starts_with("com.vmig."))
        })
        .collect();
    events.sort_by_key(|e| e.key);
    events
}

fn has(events: &[PostedEvent], type_id: &str, text: &str) -> bool {
    events.iter().any(|e| {
        e.event_type_id.as_deref() == Some(type_id)
            && e.message.as_deref().is_some_and(|m| m.contains(text))
    })
}

/// pyVmomi's view of the host's `EventEx` events: `[type id, severity, message]`.
fn pyvmomi_events(vc: &Vcsim, host: &str) -> Option<Vec<(String, String, String)>> {
    let python = workspace_root().join("target/venv-pyvmomi/bin/python");
    if !python.exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{} is missing",
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
view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
h = [x for x in view.view if x.name == name][0]
spec = vim.event.EventFilterSpec(entity=vim.event.EventFilterSpec.ByEntity(entity=h, recursion="self"), maxCount=1000)
out = [[e.eventTypeId, e.severity, e.message] for e in content.eventManager.QueryEvents(spec)
       if isinstance(e, vim.event.EventEx) and e.eventTypeId.startswith("com.vmig.")]
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

#[test]
fn mig_changes_become_vcenter_events() {
    let vc = Vcsim::builder().start().unwrap_or_else(|e| panic!("{e}"));
    let rt = runtime();
    let c = client(&rt, &vc);
    let h = rt
        .block_on(c.hosts(&[HostProperty::Name, HostProperty::BiosUuid]))
        .expect("hosts")
        .into_iter()
        .min_by_key(|h| h.name.clone())
        .expect("a host");
    let (name, uuid) = (
        h.name.clone().unwrap(),
        h.bios_uuid.clone().unwrap().to_string(),
    );
    let host = h.moref.as_moref().clone();
    let dir = temp_dir("agent-events");
    let state = dir.path().join("nvml-sim.json");
    // MIG off at start: the layout waits for the pending mode.
    nvml_sim(&state, &["init", "--gpu", "a100-pcie-40gb"]);
    let layout = dir.path().join("layouts.yaml");
    std::fs::write(&layout, "version: v1\nmig-configs:\n  one-3g:\n    - devices: all\n      mig-enabled: true\n      mig-devices:\n        \"3g.20gb\": 1\n").unwrap();
    let config = write_config(dir.path(), &vc, &uuid, &layout);
    let log = dir.path().join("agent.log");
    let _agent = RunningAgent::start(&config, &state, &log);
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();

    // The layout turns MIG on (pending until a reset): "pending" and "layout" events.
    let started = Instant::now();
    loop {
        let e = vmig_events(&rt, &c, &host);
        if has(&e, "com.vmig.mig.mode.pending", "MIG mode on pending") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no mode-pending event; events: {e:#?}\nagent log:\n{}",
            agent_log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The GPU is reset: the mode is applied, the layout creates its GI.
    nvml_sim(&state, &["reset"]);
    let events = wait_for(
        Duration::from_secs(60),
        "the mode-done, layout and GI events",
        || {
            let e = vmig_events(&rt, &c, &host);
            (has(&e, "com.vmig.mig.mode.done", "MIG mode is now on")
                && has(&e, "com.vmig.mig.layout.applied", "one-3g")
                && has(&e, "com.vmig.mig.gi.created", "(3g.20gb @"))
            .then_some(e)
        },
    );
    assert!(
        events
            .iter()
            .all(|e| e.kind == "EventEx" && e.host.as_ref() == Some(&host)),
        "{events:#?}\n{}",
        agent_log()
    );
    // An admin destroys the instance by hand: the agent sees it and says so.
    let created = events
        .iter()
        .find_map(|e| {
            let m = e.message.as_deref()?;
            (e.event_type_id.as_deref() == Some("com.vmig.mig.gi.created")).then_some(m)
        })
        .expect("gi.created");
    // "GPU 0 (GPU-…): GPU instance N (3g.20gb @0:4) created"
    let gi = created
        .split("GPU instance ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("GI id in the message")
        .to_string();
    agent_cli(&state, &["mig", "dci", "-i", "0", "--gi", &gi, "--ci", "0"]);
    agent_cli(&state, &["mig", "dgi", "-i", "0", "--gi", &gi]);
    let events = wait_for(Duration::from_secs(30), "the GI-destroyed event", || {
        let e = vmig_events(&rt, &c, &host);
        has(&e, "com.vmig.mig.gi.destroyed", "3g.20gb").then_some(e)
    });
    assert!(
        has(&events, "com.vmig.mig.ci.destroyed", "compute instance")
            || has(&events, "com.vmig.mig.gi.destroyed", "")
    );
    let layout_event = events
        .iter()
        .find(|e| e.event_type_id.as_deref() == Some("com.vmig.mig.layout.applied"))
        .unwrap();
    assert_eq!(layout_event.severity.as_deref(), Some("info"));

    if let Some(py) = pyvmomi_events(&vc, &name) {
        let ids: Vec<&str> = py.iter().map(|e| e.0.as_str()).collect();
        for id in [
            "com.vmig.mig.mode.pending",
            "com.vmig.mig.mode.done",
            "com.vmig.mig.gi.created",
            "com.vmig.mig.gi.destroyed",
        ] {
            assert!(ids.contains(&id), "pyVmomi does not see {id}: {py:?}");
        }
        assert!(
            py.iter()
                .all(|e| !e.2.is_empty() && ["info", "warning", "error"].contains(&e.1.as_str())),
            "{py:?}"
        );
    }
}
