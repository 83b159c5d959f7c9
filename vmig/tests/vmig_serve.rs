//! `vmig serve` against a simulator: the real binary is started, its endpoints are read over
//! plain HTTP, a document written to a host reaches `/metrics` within 2 s through the
//! incremental property collector and an open page (headless Chromium, the normal page) without
//! a reload, the token is enforced, `/metrics` passes the exposition check, `/events` announces
//! snapshots, and a vCenter restart is followed by a full re-read. Documents rewritten while
//! the server starts are never lost (the last one is shown), and a MIG change made on a host
//! whose real agent runs on nvml-sim reaches `/metrics`. The TLS listener serves HTTPS with
//! the token and refuses plain HTTP and wrong key/certificate files.

mod vmig_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use vmig_support::{Env, doc, gi, gpu, host_ref, nvml_sim};
use vmig_testkit::{GpuConfig, GpuRule, RunningAgent, TestCa, Vcsim};

const A100: &str = "a100-pcie-40gb";
const TOKEN: &str = "s3cret-t0ken";

/// Stops the server when the test ends, however it ends.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(env: &Env) -> Server {
    start_server_with(env, &[])
}

/// `vmig serve` on a free loopback port with the test token and `extra` arguments; its
/// address once it says where it listens (http or https).
fn start_server_with(env: &Env, extra: &[&str]) -> Server {
    let token_file = env.path("token");
    write_mode(&token_file, &format!("{TOKEN}\n"), 0o600);
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        token_file.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let mut child = env
        .vmig_cmd(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start vmig serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[vmig serve] {line}");
            if let Some(addr) = line
                .strip_prefix("vmig serve: listening on http://")
                .or_else(|| line.strip_prefix("vmig serve: listening on https://"))
            {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("vmig serve says where it listens");
    Server { child, addr }
}

/// One `GET`: status and body.
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    (status, body.to_string())
}

/// `/metrics` must pass `promtool check metrics` (Debian's `prometheus` package, which
/// scripts/deps.d/55-promtool.sh installs and CI therefore has) and vmig's own checker; where
/// promtool is missing (a developer machine) the built-in checker alone decides.
fn check_metrics(metrics: &str) {
    vmig::serve::metrics::check(metrics).unwrap_or_else(|e| panic!("{e}\n{metrics}"));
    let promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut promtool) = promtool else {
        assert!(
            std::env::var_os("CI").is_none(),
            "promtool is not installed; CI needs it (scripts/deps.d/55-promtool.sh)"
        );
        eprintln!("promtool is not installed: /metrics checked by the built-in checker only");
        return;
    };
    let mut stdin = promtool.stdin.take().expect("promtool's stdin");
    stdin
        .write_all(metrics.as_bytes())
        .expect("write to promtool");
    drop(stdin);
    let out = promtool.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics refused /metrics:\n{}{}\n{metrics}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("/metrics passes promtool check metrics");
}

/// The value of the `vmig_gpu_instances` sample of `host` with `in_use="true"`.
fn in_use(metrics: &str, host: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with("vmig_gpu_instances{"))
        .filter(|l| l.contains(&format!("host=\"{host}\"")) && l.contains("in_use=\"true\""))
        .map(|l| {
            l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(-1.0)
        })
        .reduce(|a, b| a + b)
}

/// Per-slice utilization from `doc_with_usage`: the shortest window only, idle encoders left out.
fn utilization_is_exported(metrics: &str) {
    let line = |family: &str, labels: &[&str], value: &str| {
        metrics.lines().any(|l| {
            l.starts_with(&format!("{family}{{"))
                && labels.iter().all(|x| l.contains(x))
                && l.ends_with(&format!(" {value}"))
        })
    };
    let sm_p95 = [
        "vm=\"vm-a\"",
        "window=\"3600s\"",
        "engine=\"sm\"",
        "stat=\"p95\"",
    ];
    assert!(
        line("vmig_gi_utilization_percent", &sm_p95, "40"),
        "{metrics}"
    );
    assert!(
        line("vmig_gi_framebuffer_used_mib", &["stat=\"max\""], "8000"),
        "{metrics}"
    );
    assert!(!metrics.contains("engine=\"enc\""), "{metrics}");
    assert!(!metrics.contains("window=\"86400s\""), "{metrics}");
    assert!(
        line("vmig_gpu_ecc_errors", &["type=\"corrected\""], "2"),
        "{metrics}"
    );
    assert!(line("vmig_gpu_xid_errors", &[], "3"), "{metrics}");
}

/// `doc` plus what a sampling agent publishes: the first GI's utilization (1 h and 24 h), the
/// GPU's ECC and XID counts.
fn doc_with_usage(gpus: Vec<mig::report::GpuReport>) -> String {
    use mig::report::{GiUsage, GpuUsage, HostReport, Stats, UsageReport, UsageWindow};
    let mut r = HostReport::from_json(&doc(5, 3600, gpus)).expect("a valid document");
    let window = |s| UsageWindow {
        window_s: s,
        covered_s: s,
        sm: Stats(20, 40, 55),
        mem: Stats(5, 9, 12),
        enc: Stats(0, 0, 0),
        dec: Stats(0, 0, 0),
        fb_mib: Some(Stats(3000, 6000, 8000)),
    };
    let g = &r.gpus[0];
    r.usage = Some(UsageReport {
        sample_interval_s: 10,
        gpus: vec![GpuUsage {
            uuid: g.uuid.clone(),
            ecc: Some(mig::report::EccCounts {
                corrected: 2,
                uncorrected: 0,
            }),
            xid: Some(mig::report::XidCounts {
                total: 3,
                codes: Vec::new(),
                last: None,
            }),
            gpu_instances: vec![GiUsage {
                gi_id: g.gpu_instances[0].gi_id,
                vm: Some("vm-a".into()),
                windows: vec![window(3600), window(86_400)],
                source: None,
            }],
        }],
    });
    r.to_json()
}

/// Host `name` and the key of `vmig.mig`, to write its agent document as an agent does.
fn document_field(
    rt: &tokio::runtime::Runtime,
    c: &vcenter_client::Client,
    name: &str,
) -> (vcenter_client::HostRef, vcenter_client::CustomFieldKey) {
    let host = host_ref(rt, c, name);
    let key = rt
        .block_on(c.custom_field_defs())
        .expect("field definitions")
        .into_iter()
        .find(|d| d.name == "vmig.mig")
        .expect("vmig.mig defined")
        .key;
    (host, key)
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

#[test]
fn a_document_change_reaches_metrics_and_a_restart_is_followed() {
    let h0 = vec![gpu(0, A100, true, true, &[gi("3g.20gb", 4, Some("vm-a"))])];
    let builder = Vcsim::builder()
        .clusters(1)
        .hosts_per_cluster(2)
        .vms(2)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::hosts("DC0_C0_H0").gpu(A100, 1)))
        .custom_value("DC0_C0_H0", "vmig.mig", &doc_with_usage(h0));
    let mut env = Env::start(builder, "vmig-serve");
    let server = start_server(&env);
    let addr = server.addr.clone();

    wait_for("the first read", Duration::from_secs(60), || {
        get(&addr, "/healthz", Some(TOKEN)).0 == 200
    });

    // The token is required everywhere.
    for path in ["/", "/metrics", "/api/v1/report", "/healthz", "/events"] {
        assert_eq!(get(&addr, path, None).0, 401, "{path} without a token");
        assert_eq!(
            get(&addr, path, Some("wrong")).0,
            401,
            "{path} with a wrong token"
        );
    }
    assert_eq!(get(&addr, &format!("/healthz?token={TOKEN}"), None).0, 200);

    let (status, metrics) = get(&addr, "/metrics", Some(TOKEN));
    assert_eq!(status, 200);
    check_metrics(&metrics);
    assert_eq!(in_use(&metrics, "DC0_C0_H0"), Some(1.0), "{metrics}");
    assert!(metrics.contains("vmig_placeable_vgpus{"), "{metrics}");
    assert!(
        metrics.contains("vmig_gpu_stranded_compute_slices{"),
        "{metrics}"
    );
    assert!(metrics.contains("vmig_agent_status{"), "{metrics}");
    assert!(metrics.contains("vmig_vcenter_up{"), "{metrics}");
    utilization_is_exported(&metrics);

    let (status, report) = get(&addr, "/api/v1/report", Some(TOKEN));
    assert_eq!(status, 200);
    let report: serde_json::Value = serde_json::from_str(&report).expect("JSON report");
    assert_eq!(report["schema"], "vmig.report/v1");

    let (status, page) = get(&addr, "/", Some(TOKEN));
    assert_eq!(status, 200);
    assert!(page.contains("id=\"vmig-live\"") && page.contains("EventSource"));
    assert!(!page.contains("src=\"http"), "no external assets");

    // /events announces the current snapshot at once.
    let mut ev = TcpStream::connect(&addr).expect("connect");
    ev.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(
        ev,
        "GET /events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    )
    .expect("send");
    let mut buf = vec![0; 4096];
    let mut seen = String::new();
    while !seen.contains("event: report\ndata: ") {
        let n = ev.read(&mut buf).expect("an event");
        assert!(n > 0, "event stream closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("text/event-stream"), "{seen}");

    // A second instance in use, written as an agent would: in /metrics within 2 s.
    let rt = Env::runtime();
    let c = env.client(&rt);
    let (host, key) = document_field(&rt, &c, "DC0_C0_H0");
    let h0b = vec![gpu(
        0,
        A100,
        true,
        true,
        &[
            gi("3g.20gb", 4, Some("vm-a")),
            gi("2g.10gb", 0, Some("vm-b")),
        ],
    )];
    rt.block_on(c.set_custom_value(host.as_moref(), key, &doc(1, 3600, h0b)))
        .expect("write the document");
    let took = wait_for(
        "the new document in /metrics",
        Duration::from_secs(2),
        || in_use(&get(&addr, "/metrics", Some(TOKEN)).1, "DC0_C0_H0") == Some(2.0),
    );
    eprintln!("document change visible in /metrics after {took:?}");

    // An open page follows a change without a reload: headless Chromium on the normal page,
    // read through its DevTools protocol while the page's event stream stays open.
    if let Some(mut browser) = Chromium::open(&format!("http://{addr}/?token={TOKEN}")) {
        let streams = || {
            let (_, h) = get(&addr, "/healthz", Some(TOKEN));
            serde_json::from_str::<serde_json::Value>(&h).expect("health JSON")["event_streams"]
                .as_u64()
                .unwrap_or(0)
        };
        wait_for("the page's event stream", Duration::from_secs(30), || {
            streams() >= 2
        });
        let before = browser.dom();
        assert!(
            before.contains("data-generation=") && !before.contains("vm-live"),
            "{before}"
        );
        let h0c = vec![gpu(
            0,
            A100,
            true,
            true,
            &[
                gi("3g.20gb", 4, Some("vm-a")),
                gi("2g.10gb", 0, Some("vm-b")),
                gi("1g.5gb", 2, Some("vm-live")),
            ],
        )];
        rt.block_on(c.set_custom_value(host.as_moref(), key, &doc(1, 3600, h0c)))
            .expect("write the document");
        let mut dom = String::new();
        let took = wait_for(
            "the open page to show the change",
            Duration::from_secs(10),
            || {
                dom = browser.dom();
                dom.contains("vm-live")
            },
        );
        eprintln!("document change on the open page after {took:?}");
        assert!(
            dom.contains("data-live-updates=\""),
            "the page was replaced, not updated in place:\n{dom}"
        );
        assert!(streams() >= 2, "the page's event stream closed");
    }

    // A vCenter restart: the simulator comes back with its initial documents, and the server
    // reads everything again.
    let syncs = || {
        let (_, health) = get(&addr, "/healthz", Some(TOKEN));
        serde_json::from_str::<serde_json::Value>(&health).expect("health JSON")["vcenters"][0]
            ["syncs"]
            .as_u64()
            .unwrap_or(0)
    };
    // The first read, then the check read made once the collector's first answer is in.
    wait_for("the check read", Duration::from_secs(30), || syncs() >= 2);
    let before = syncs();
    env.vc.restart().expect("restart vcsim");
    let took = wait_for(
        "the re-read after the restart",
        Duration::from_secs(90),
        || {
            syncs() > before
                && in_use(&get(&addr, "/metrics", Some(TOKEN)).1, "DC0_C0_H0") == Some(1.0)
        },
    );
    eprintln!("re-read {took:?} after vcsim was back");
    drop(server);
}

/// Documents rewritten without pause while `vmig serve` starts (its first read, the
/// collector's first answer, the check read): whatever the order, the server ends up showing
/// the last one. The vCenter simulator misses changes made while it collects a collector's
/// first answer; the check read is what catches them.
#[test]
fn changes_written_while_serve_starts_are_not_lost() {
    let one = || vec![gpu(0, A100, true, true, &[gi("3g.20gb", 4, Some("vm-a"))])];
    let two = || {
        vec![gpu(
            0,
            A100,
            true,
            true,
            &[
                gi("3g.20gb", 4, Some("vm-a")),
                gi("2g.10gb", 0, Some("vm-b")),
            ],
        )]
    };
    let builder = Vcsim::builder()
        .clusters(1)
        .hosts_per_cluster(2)
        .vms(2)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::hosts("DC0_C0_H0").gpu(A100, 1)))
        .custom_value("DC0_C0_H0", "vmig.mig", &doc_with_usage(one()));
    let env = Env::start(builder, "vmig-serve-start");
    let rt = Env::runtime();
    let c = env.client(&rt);
    let (host, key) = document_field(&rt, &c, "DC0_C0_H0");

    let server = start_server(&env);
    let addr = server.addr.clone();
    let syncs = || {
        let (status, health) = get(&addr, "/healthz", Some(TOKEN));
        let v: serde_json::Value = serde_json::from_str(&health).unwrap_or_default();
        (status == 200).then(|| v["vcenters"][0]["syncs"].as_u64().unwrap_or(0))
    };
    let started = Instant::now();
    let (mut writes, mut after_settled, mut last) = (0u32, 0u32, 1.0);
    while after_settled < 5 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "vmig serve did not settle"
        );
        let (gpus, count) = if writes % 2 == 0 {
            (two(), 2.0)
        } else {
            (one(), 1.0)
        };
        rt.block_on(c.set_custom_value(host.as_moref(), key, &doc(1, 3600, gpus)))
            .expect("write the document");
        writes += 1;
        last = count;
        if syncs().is_some_and(|n| n >= 2) {
            after_settled += 1;
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    let took = wait_for(
        "the last document in /metrics",
        Duration::from_secs(10),
        || in_use(&get(&addr, "/metrics", Some(TOKEN)).1, "DC0_C0_H0") == Some(last),
    );
    eprintln!("{writes} documents written while the server started; the last shown after {took:?}");
    drop(server);
}

/// The whole chain: a real agent on nvml-sim publishes a MIG change made on its host (a GI
/// created and a process started in it, as an admin and a workload would), and the server
/// shows it in `/metrics` and in the report it serves to the page, without a restart.
#[test]
fn a_mig_change_seen_by_a_real_agent_reaches_metrics() {
    let builder = Vcsim::builder()
        .clusters(1)
        .hosts_per_cluster(2)
        .vms(2)
        .gpu_hosts(GpuConfig::default().rule(GpuRule::hosts("DC0_C0_H0").gpu(A100, 1)));
    let env = Env::start(builder, "vmig-serve-agent");
    let rt = Env::runtime();
    let c = env.client(&rt);
    let uuid = vmig_support::host_bios_uuid(&rt, &c, "DC0_C0_H0");
    let state = env.path("nvml-sim.json");
    nvml_sim(&state, &["init", "--mig", "--gpu", A100]);
    let config = vmig_support::agent_config(
        env.dir.path(),
        &env.vc,
        &uuid,
        "heartbeat_interval_s = 60\n",
    );
    let _agent = RunningAgent::start(&config, &state, &env.path("agent.log"));

    let server = start_server(&env);
    let addr = server.addr.clone();
    let gis = || {
        let (_, report) = get(&addr, "/api/v1/report", Some(TOKEN));
        let r: serde_json::Value = serde_json::from_str(&report).unwrap_or_default();
        vmig_support::host_json(&r, "DC0_C0_H0")
            .and_then(|h| h["gpus"][0]["instances"].as_array().cloned())
            .map(|i| i.len())
    };
    wait_for(
        "the agent's first report in the server",
        Duration::from_secs(120),
        || gis() == Some(0),
    );

    vmig_support::agent_cli(&state, &["mig", "cgi", "-i", "0", "3g.20gb", "-C"]);
    nvml_sim(
        &state,
        &[
            "occupy", "-i", "0", "--gi", "1", "--ci", "0", "--pid", "4242",
        ],
    );
    let took = wait_for("the new GI in /metrics", Duration::from_secs(60), || {
        in_use(&get(&addr, "/metrics", Some(TOKEN)).1, "DC0_C0_H0") == Some(1.0)
    });
    assert_eq!(gis(), Some(1));
    eprintln!("a MIG change on the host reached /metrics after {took:?} (agent poll included)");
    drop(server);
}

/// Headless Chromium with a page open, driven through its DevTools protocol over a pipe
/// (`--remote-debugging-pipe`: JSON messages ending in NUL on file descriptors 3 and 4,
/// here two FIFOs the shell connects before it becomes Chromium). Reading the live DOM this
/// way lets the page keep its event stream open, as in a user's browser; `--dump-dom` would
/// wait for the network to go idle, which a live page never does.
struct Chromium {
    child: Child,
    to: std::fs::File,
    from: std::sync::mpsc::Receiver<serde_json::Value>,
    session: String,
    next_id: u64,
    /// The profile and the FIFOs; removed when the browser is gone.
    _dir: vmig_testkit::TempDir,
}

impl Chromium {
    /// Chromium with `url` open; `None` when Chromium is not installed, which fails under CI.
    fn open(url: &str) -> Option<Chromium> {
        let bin = ["chromium", "chromium-browser", "google-chrome"]
            .into_iter()
            .find(|b| {
                std::process::Command::new(b)
                    .arg("--version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            });
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromium is not installed; CI needs it (scripts/deps.d/50-chromium.sh)"
            );
            eprintln!("SKIPPED the live page check: chromium is not installed");
            return None;
        };
        let dir = vmig_testkit::temp_dir("chromium-serve");
        let (to_path, from_path) = (dir.path().join("to"), dir.path().join("from"));
        for p in [&to_path, &from_path] {
            let ok = std::process::Command::new("mkfifo")
                .arg(p)
                .status()
                .expect("mkfifo");
            assert!(ok.success(), "mkfifo {}", p.display());
        }
        let child = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<"$VMIG_CDP_TO" 4>"$VMIG_CDP_FROM""#)
            .arg(bin)
            .args(["--headless", "--no-sandbox", "--disable-gpu"])
            .arg("--disable-background-networking")
            .arg(format!(
                "--user-data-dir={}",
                dir.path().join("profile").display()
            ))
            .args(["--remote-debugging-pipe", url])
            .env("VMIG_CDP_TO", &to_path)
            .env("VMIG_CDP_FROM", &from_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // The shell opens "to" first, then "from"; each open waits for the other end.
        let to = std::fs::OpenOptions::new()
            .write(true)
            .open(&to_path)
            .expect("open the pipe to chromium");
        let from = std::fs::File::open(&from_path).expect("open the pipe from chromium");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(from);
            let mut msg = Vec::new();
            while r.read_until(0, &mut msg).is_ok_and(|n| n > 0) {
                if msg.last() == Some(&0) {
                    msg.pop();
                }
                if let Ok(v) = serde_json::from_slice(&msg)
                    && tx.send(v).is_err()
                {
                    break;
                }
                msg.clear();
            }
        });
        let mut browser = Chromium {
            child,
            to,
            from: rx,
            session: String::new(),
            next_id: 0,
            _dir: dir,
        };
        let mut target = None;
        wait_for("chromium's page target", Duration::from_secs(30), || {
            let targets = browser.call(None, "Target.getTargets", serde_json::json!({}));
            target = targets["targetInfos"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["type"] == "page" && t["url"].as_str() == Some(url))
                .and_then(|t| t["targetId"].as_str().map(str::to_string));
            target.is_some()
        });
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            serde_json::json!({ "targetId": target, "flatten": true }),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a DevTools session")
            .to_string();
        Some(browser)
    }

    /// One DevTools command (on the page's session when `session` is set): its result.
    fn call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: serde_json::Value,
    ) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = serde_json::json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let mut bytes = serde_json::to_vec(&msg).expect("JSON");
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        loop {
            let v = self
                .from
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("no answer from chromium to {method}: {e}"));
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The page's DOM as it is now.
    fn dom(&mut self) -> String {
        let session = self.session.clone();
        let r = self.call(
            Some(&session),
            "Runtime.evaluate",
            serde_json::json!({
                "expression": "document.documentElement.outerHTML",
                "returnByValue": true,
            }),
        );
        r["result"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `text` to `path` with `mode`.
fn write_mode(path: &std::path::Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `vmig serve ARGS` that must refuse to start: its stderr.
fn refused(env: &Env, args: &[&str]) -> String {
    let out = env.vmig_cmd(args).output().expect("run vmig serve");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "vmig serve started: {err}");
    assert!(
        !err.contains("listening on"),
        "it opened the listener first: {err}"
    );
    err
}

#[test]
fn the_tls_listener_serves_https_and_refuses_wrong_files() {
    let builder = Vcsim::builder().clusters(1).hosts_per_cluster(1).vms(1);
    let env = Env::start(builder, "vmig-serve-tls");
    let ca = TestCa::generate("vmig serve test CA").expect("CA");
    let cert = ca
        .issue_server_cert(&["127.0.0.1", "localhost"])
        .expect("server certificate");
    let other = ca
        .issue_server_cert(&["127.0.0.1"])
        .expect("second certificate");
    let (cert_path, key_path) = (env.path("serve.pem"), env.path("serve.key"));
    write_mode(&cert_path, &cert.cert_pem, 0o644);
    write_mode(&key_path, &cert.key_pem, 0o600);
    let (cert_s, key_s) = (
        cert_path.to_str().expect("utf-8 path"),
        key_path.to_str().expect("utf-8 path"),
    );

    // Wrong files are refused at start, each with a sentence naming the file and the fix.
    let loose = env.path("loose.key");
    write_mode(&loose, &cert.key_pem, 0o644);
    let loose_s = loose.to_str().expect("utf-8 path");
    let err = refused(&env, &["serve", "--tls-cert", cert_s, "--tls-key", loose_s]);
    assert!(err.contains(loose_s) && err.contains("chmod 600"), "{err}");
    let wrong = env.path("other.key");
    write_mode(&wrong, &other.key_pem, 0o600);
    let wrong_s = wrong.to_str().expect("utf-8 path");
    let err = refused(&env, &["serve", "--tls-cert", cert_s, "--tls-key", wrong_s]);
    assert!(
        err.contains("the key does not belong to the certificate"),
        "{err}"
    );
    let missing = env.path("missing.key");
    let missing_s = missing.to_str().expect("utf-8 path");
    let err = refused(
        &env,
        &["serve", "--tls-cert", cert_s, "--tls-key", missing_s],
    );
    assert!(
        err.contains("cannot read the TLS key") && err.contains(missing_s),
        "{err}"
    );
    let err = refused(&env, &["serve", "--tls-cert", key_s, "--tls-key", key_s]);
    assert!(err.contains("holds no certificate"), "{err}");
    let err = refused(&env, &["serve", "--tls-cert", cert_s]);
    assert!(err.contains("--tls-key"), "{err}");
    // A token anyone on the machine can read is as good as no token.
    let open_token = env.path("open.token");
    write_mode(&open_token, &format!("{TOKEN}\n"), 0o644);
    let open_s = open_token.to_str().expect("utf-8 path");
    let err = refused(&env, &["serve", "--token-file", open_s]);
    assert!(err.contains(open_s) && err.contains("chmod 600"), "{err}");

    let server = start_server_with(&env, &["--tls-cert", cert_s, "--tls-key", key_s]);
    let addr = server.addr.clone();
    let rt = Env::runtime();
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(
            reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).expect("CA certificate"),
        )
        .build()
        .expect("HTTPS client");
    let https = |path: &str, token: Option<&str>| -> u16 {
        let mut req = client.get(format!("https://{addr}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        rt.block_on(req.send())
            .unwrap_or_else(|e| panic!("HTTPS GET {path}: {e:?}"))
            .status()
            .as_u16()
    };
    wait_for(
        "the first read, over HTTPS",
        Duration::from_secs(60),
        || https("/healthz", Some(TOKEN)) == 200,
    );
    assert_eq!(https("/metrics", Some(TOKEN)), 200);
    assert_eq!(https("/metrics", None), 401, "no token");
    assert_eq!(https("/metrics", Some("wrong")), 401, "wrong token");
    let body = rt
        .block_on(async {
            client
                .get(format!("https://{addr}/metrics"))
                .bearer_auth(TOKEN)
                .send()
                .await?
                .text()
                .await
        })
        .expect("metrics over HTTPS");
    assert!(body.contains("vmig_vcenter_up{"), "{body}");

    // Plain HTTP to the TLS listener gets no HTTP answer.
    let mut s = TcpStream::connect(&addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15))).ok();
    // The listener may reset the connection before the request is even written: a reset, on
    // writing or on reading, is as good an answer as a close.
    let _ = write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    );
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert!(
        !String::from_utf8_lossy(&raw).contains("HTTP/1.1"),
        "plain HTTP was answered: {}",
        String::from_utf8_lossy(&raw)
    );
    drop(server);
}
